"""The documents plugin's routers; all under ``/api/v1/documents``."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from crm2_documents.routes import admin, documents, files, oauth

    return [documents.router, files.router, admin.router, oauth.router]
