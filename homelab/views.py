from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse


@login_not_required
def first_run(request):
    return HttpResponse("setup")


class LoginView(auth_views.LoginView):
    pass


def api_tokens(request):
    return HttpResponse("tokens")
