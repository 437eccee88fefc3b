"""The client's address, for the sign-in lockouts (issue 12, finding 9).

Without a proxy it is the socket's address (REMOTE_ADDR); X-Forwarded-For is then the client's own words and
ignored. Behind N proxies of our own (`CLINIC_TRUSTED_PROXIES=N`; docker-compose.yml has one, caddy), it is
the N-th address from the right of X-Forwarded-For: each of our proxies appends the address it saw, and
anything further left was written by the client."""

from django.conf import settings


def client_ip(request) -> str | None:
    proxies = getattr(settings, "CLINIC_TRUSTED_PROXIES", 0)
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
