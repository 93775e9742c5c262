"""``reactor.web``: the HTTP API, webhook ingress and interrupt inbox (extra ``reactor[web]``).

Example::

    from fastapi import FastAPI
    from reactor.web import create_app

    app = FastAPI()
    app.mount("/reactor", create_app(authorize=my_authorize, secret=SECRET))

See the README's web section for the API table and the pages.
"""

from ._app import Action, Authorize, create_app
from ._signing import SIGNATURE_HEADER, resume_link, sign_webhook

__all__ = ["SIGNATURE_HEADER", "Action", "Authorize", "create_app", "resume_link", "sign_webhook"]
