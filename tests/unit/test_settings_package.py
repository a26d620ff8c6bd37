"""``finesift.settings`` declares its sections in modules by subject; every name imports from the package."""

from __future__ import annotations

from pydantic import BaseModel

import finesift.settings as settings


def test_every_section_and_helper_is_exported_from_finesift_settings() -> None:
    sections = [
        field.annotation
        for field in settings.Settings.model_fields.values()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    ]
    assert len(sections) == 12
    for cls in [*sections, settings.ModelSettings, settings.Settings]:
        assert cls.__name__ in settings.__all__ and getattr(settings, cls.__name__) is cls
    helpers = {"validated", "override", "describe", "default_home", "Dtype", "SearchMode", "NO_MODEL"}
    assert helpers <= set(settings.__all__)
    assert all(hasattr(settings, name) for name in settings.__all__)
