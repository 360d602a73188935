"""A data source as it may be shown: URLs lose user name, password, query and fragment; other sources stay."""
import pytest

from deepfake_detector.utils.redaction import displayable_source


@pytest.mark.parametrize(("source", "shown"), [
    ("https://user:pa55@data.example.org:8443/sets/hardfake.zip?sig=abc#x", "https://data.example.org:8443/sets/hardfake.zip"),
    ("http://token@[::1]:8080/a.tar.gz", "http://[::1]:8080/a.tar.gz"),
    ("s3://KEY:SECRET@bucket/faces.zip", "s3://bucket/faces.zip"),
    ("http://host:notaport/x.zip", "http://host/x.zip"),
    ("  demo  ", "demo"),
    ("demo:faces", "demo:faces"),
    ("kaggle:owner/dataset", "kaggle:owner/dataset"),
    ("data/raw/hardfake.zip", "data/raw/hardfake.zip"),
])
def test_a_source_is_shown_without_credentials(source, shown):
    assert displayable_source(source) == shown
