#!/bin/sh
# The upstream images' entrypoint, by name: a compose file may call
# `docker-entrypoint.sh redis-server ...` after its own set-up, so that the server drops to
# its own user as upstream does. Here it runs the stand-in's entrypoint for this image.
exec python3 "${STANDIN_ENTRYPOINT:?this stand-in image has no upstream entrypoint}" "$@"
