import portsentry


def test_version_matches_core() -> None:
    assert portsentry.__version__.count(".") == 2


def test_error_hierarchy() -> None:
    assert issubclass(portsentry.PortsentryError, Exception)
