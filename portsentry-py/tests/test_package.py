import portsentry


def test_version_matches_core() -> None:
    assert portsentry.__version__.count(".") == 2


def test_error_hierarchy() -> None:
    for error in [
        portsentry.ConfigError,
        portsentry.CaptureFileError,
        portsentry.ResponderError,
        portsentry.ArgumentError,
    ]:
        assert issubclass(error, portsentry.PortsentryError)
    assert issubclass(portsentry.PortsentryError, Exception)
    assert not issubclass(portsentry.PortsentryError, RuntimeError)


def test_public_names_are_exported() -> None:
    for name in portsentry.__all__:
        assert hasattr(portsentry, name), name
    assert portsentry.Alert.__module__ == "portsentry"
    assert issubclass(portsentry.Alert, portsentry.Event)
