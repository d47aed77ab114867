from homelab import __version__


def product(request):
    return {"product_name": "Homelab", "product_version": __version__}
