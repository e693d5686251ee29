"""The Examples of crosscheck, from_keras and to_keras run as written (they need Keras, so
they are code blocks that this keras-marked test runs, not doctests)."""
import textwrap

import pytest

from mlstm.interop.keras import crosscheck, from_keras, to_keras

pytestmark = pytest.mark.keras


def _example_code(function):
    """The indented ``::`` block of the function's Examples section."""
    doc = function.__doc__
    section = doc.split("\n    Examples\n    --------\n", 1)[1]
    block = section.split("::\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line.strip() and not line.startswith(" " * 8):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


@pytest.mark.parametrize("function", [to_keras, from_keras, crosscheck],
                         ids=lambda f: f.__name__)
def test_the_example_runs(function, capsys):
    code = _example_code(function)
    assert "assert" in code and function.__name__ in code
    exec(compile(code, f"<{function.__name__} example>", "exec"), {})
    if function is crosscheck:
        assert "OK: all" in capsys.readouterr().out
