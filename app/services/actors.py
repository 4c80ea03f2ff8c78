"""Who is calling: the few facts of a user that authorization needs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.errors import Forbidden


@dataclass(frozen=True, slots=True)
class Actor:
    id: uuid.UUID
    role: str
    is_active: bool = True

    @property
    def is_superuser(self) -> bool:
        return self.role == "admin"

    def require_writer(self) -> None:
        """Viewers may read everything but change nothing."""
        if self.role == "viewer":
            raise Forbidden("Viewers may not change anything")

    def require_admin(self) -> None:
        if not self.is_superuser:
            raise Forbidden("Admin required")
