"""Redis in the pool: ACL rules, the redis-cli command text and how its answers are read.

Pure functions, like pooling.engines (which calls these for the engine "redis"); what Redis
can and cannot isolate is written down in engines' docstring.

Every command goes to `redis-cli` on stdin, one per line, after the admin password on the
first line (read by a fixed `sh -c` script into REDISCLI_AUTH): nothing secret or derived
from input is ever on a command line. Each argument is double-quoted for redis-cli's line
splitter, and names are validated (engines.check_name) before they get here.

redis-cli exits 0 even when a command fails, so `errors()` reads its answers: in its raw
output an error is a line starting with an upper-case code (`ERR ...`, `NOPERM ...`,
`NOAUTH ...`) or `AUTH failed`; nothing else we send answers like that (user names are
lower case, the rest is `OK`, numbers or our markers).
"""

from __future__ import annotations

import hashlib
import re

from pooling.engines import check_name, check_password

ADMIN_USER = "admin"
PORT = 6379
# Everything a queue, a cache or channels need; see engines' docstring for what each
# denial is for. `-@admin` is within `-@dangerous` on 7.0, kept to say it outright.
DENIED = ("-@dangerous", "-@admin", "-select", "-function", "-script|flush", "-randomkey")
USERS_BEGIN = "hl-users-begin"
USERS_END = "hl-users-end"
_ERROR_RE = re.compile(r"^(?:[A-Z][A-Z_]+ |AUTH failed)")

# The admin's redis-cli: the password is stdin's first line, the commands follow.
CLIENT = (
    'read -r p; REDISCLI_AUTH="$p"; export REDISCLI_AUTH; '
    f"exec redis-cli --user {ADMIN_USER} -h 127.0.0.1 -p {PORT}"
)
READY = (
    'read -r p; REDISCLI_AUTH="$p"; export REDISCLI_AUTH; '
    f"redis-cli --user {ADMIN_USER} -h 127.0.0.1 -p {PORT} ping | grep -qx PONG"
)

# Deletes every key matching ARGV[1] in the current database (0: apps cannot SELECT).
# UNLINK frees the memory in the background. Answers the number of keys removed.
_DELETE_LUA = (
    "local n = 0 local cursor = '0' repeat "
    "local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000) cursor = r[1] "
    "for _, k in ipairs(r[2]) do redis.call('UNLINK', k) n = n + 1 end "
    "until cursor == '0' return n"
)
# `<name><TAB><bytes>` per ARGV name: the memory of the keys under `<name>:`.
_SIZE_LUA = (
    "local out = {} for _, name in ipairs(ARGV) do local bytes = 0 local cursor = '0' "
    "repeat local r = redis.call('SCAN', cursor, 'MATCH', name .. ':*', 'COUNT', 1000) "
    "cursor = r[1] for _, k in ipairs(r[2]) do "
    "bytes = bytes + (redis.call('MEMORY', 'USAGE', k) or 0) end until cursor == '0' "
    "table.insert(out, name .. '\\t' .. bytes) end return out"
)


def prefix_for(name: str) -> str:
    """The key and channel prefix of an app's user: `<name>:`."""
    return f"{check_name(name)}:"


def password_hash(password: str) -> str:
    """The ACL form `#<sha256>`: the plain password never reaches the server's files."""
    return "#" + hashlib.sha256(check_password(password).encode()).hexdigest()


def acl_rules(*, user: str, password: str) -> list[str]:
    """`reset` first, so a user left by an earlier run ends up exactly like a new one."""
    prefix = prefix_for(user)
    return [
        "reset",
        "on",
        password_hash(password),
        f"~{prefix}*",
        f"&{prefix}*",
        "+@all",
        *DENIED,
    ]


def quote(arg: str) -> str:
    """One argument for redis-cli's line splitter: always double-quoted; backslash, quote
    and control characters escaped, so no argument can start another one or a new line."""
    if not isinstance(arg, str):
        raise TypeError("a Redis argument must be text")
    out = []
    for char in arg:
        if char in '\\"':
            out.append("\\" + char)
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def line(*args: str) -> str:
    return " ".join(quote(a) for a in args)


def provision_commands(*, user: str, password: str) -> str:
    """Idempotent: lists the users (to tell whether this one existed), creates or resets
    the user with the stored password and the app's patterns, saves the ACL file."""
    return "\n".join(
        [
            line("ECHO", USERS_BEGIN),
            line("ACL", "USERS"),
            line("ECHO", USERS_END),
            line("ACL", "SETUSER", check_name(user), *acl_rules(user=user, password=password)),
            line("ACL", "SAVE"),
            "",
        ]
    )


def drop_commands(*, user: str) -> str:
    """Deletes the user (Redis disconnects its clients), then its keys; saves the ACLs."""
    return "\n".join(
        [
            line("ACL", "DELUSER", check_name(user)),
            line("EVAL", _DELETE_LUA, "0", prefix_for(user) + "*"),
            line("ACL", "SAVE"),
            "",
        ]
    )


def size_commands(names: list[str]) -> str:
    """Each user's keys' memory (`name<TAB>bytes` lines), then the open connections (CLIENT
    LIST, one line per client with `user=<name>`; a script may not call CLIENT)."""
    if not names:
        return ""
    return line("EVAL", _SIZE_LUA, "0", *(check_name(n) for n in names)) + "\nCLIENT LIST\n"


_CLIENT_USER_RE = re.compile(r"(?:^|\s)user=(\S+)")


def parse_usage(output: str) -> dict[str, tuple[int, int | None]]:
    """size_commands' answer: {user: (bytes of its keys, its open connections)}."""
    sizes: dict[str, int] = {}
    clients: dict[str, int] = {}
    for text in output.splitlines():
        name, tab, size = text.strip().partition("\t")
        if tab and size.isdigit():
            sizes[name] = int(size)
        elif match := _CLIENT_USER_RE.search(text):
            clients[match.group(1)] = clients.get(match.group(1), 0) + 1
    return {name: (size, clients.get(name, 0)) for name, size in sizes.items()}


def errors(output: str) -> list[str]:
    return [ln.strip() for ln in output.splitlines() if _ERROR_RE.match(ln.strip())]


def user_existed(output: str, user: str) -> bool:
    """From provision_commands' answer: whether `user` was in ACL USERS before."""
    lines = [ln.strip() for ln in output.splitlines()]
    if USERS_BEGIN not in lines or USERS_END not in lines:
        raise ValueError("no user list in the Redis server's answer")
    users = lines[lines.index(USERS_BEGIN) + 1 : lines.index(USERS_END)]
    return user in users


def connection_env(*, host: str, user: str, password: str) -> dict[str, str]:
    """Values by manifest role. `database` is 0: the only one an app may use."""
    return {
        "host": host,
        "port": str(PORT),
        "database": "0",
        "user": user,
        "password": password,
        "prefix": prefix_for(user),
        "url": f"redis://{user}:{password}@{host}:{PORT}/0",
    }


def poolable_roles(roles: set[str]) -> tuple[bool, str]:
    """Whether a Redis need with these env roles can share the pool's Redis, and why not.

    The app must put its keys under a prefix (a `prefix` role) and log in as its user:
    either a URL (which carries user and password) or the `user` and `password` roles.
    """
    if "prefix" not in roles:
        return False, (
            "it cannot put its keys under a name of its own (no key prefix setting), so in "
            "a shared Redis its keys could collide with other apps'"
        )
    if "url" not in roles and not {"user", "password"} <= roles:
        return False, "it cannot log in to Redis with a user name and password of its own"
    return True, ""
