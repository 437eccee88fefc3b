"""What the navigation needs on every page: the signed-in user's allowed actions, by name."""

from staff.roles import Action, Role, can


def clinic_permissions(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"may": {}, "role_labels": ""}
    return {
        "may": {action.value: can(user, action) for action in Action},
        "role_labels": ", ".join(Role(role).label for role in sorted(user.roles)),
    }
