"""The docs cannot rot: every equation block names code that exists, in the file it links;
the ``>>>`` examples on the pages run; links resolve; and the Adam epsilon relation stated in
docs/optimizers.md holds against PyTorch."""
import doctest
import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import mlstm

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MATH_PAGES = ["lstm.md", "dense_and_merge.md", "losses.md", "optimizers.md", "multi_output.md",
              "classification.md", "wrappers_and_regularization.md"]
PAGES = MATH_PAGES + ["index.md", "extending.md"]
CODE_REF = re.compile(r"\[`([\w.]+)`\]\((\.\./[\w/.]+\.py)\)")


def _resolve(dotted):
    """Import the longest module prefix of ``dotted`` and getattr the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _blocks_and_code_lines(text):
    """``[(math block text, the Code: line that follows it or None)]``."""
    lines = text.splitlines()
    found, k = [], 0
    while k < len(lines):
        if lines[k].strip() == "```math":
            end = lines.index("```", k + 1)
            block = "\n".join(lines[k + 1:end])
            code = None
            for line in lines[end + 1:]:
                if line.startswith("```"):
                    break
                if line.startswith("Code:"):
                    code = line
                    break
            found.append((block, code))
            k = end + 1
        else:
            k += 1
    return found


def _code_lines():
    return [(page, line) for page in MATH_PAGES
            for _, line in _blocks_and_code_lines((DOCS / page).read_text(encoding="utf-8"))
            if line]


@pytest.mark.parametrize("page", MATH_PAGES)
def test_every_equation_block_names_the_code_that_implements_it(page):
    blocks = _blocks_and_code_lines((DOCS / page).read_text(encoding="utf-8"))
    assert len(blocks) >= 3, f"{page} has {len(blocks)} equation blocks"
    for block, code in blocks:
        assert code is not None, f"{page}: no 'Code:' line after the block\n{block}"
        assert CODE_REF.search(code), f"{page}: the Code line names no function: {code}"


def test_every_named_function_exists_in_the_linked_file():
    checked = 0
    for page, line in _code_lines():
        for dotted, link in CODE_REF.findall(line):
            obj = _resolve(dotted)
            target = inspect.unwrap(obj)
            source = inspect.getsourcefile(target if not isinstance(target, property)
                                           else target.fget)
            linked = (DOCS / link).resolve()
            assert linked.is_file(), f"{page}: {link} does not exist"
            assert Path(source).resolve() == linked, (
                f"{page}: {dotted} is defined in {source}, the page links {link}")
            checked += 1
    assert checked >= 30


def test_every_op_and_loss_and_optimizer_is_documented():
    named = {dotted for _, line in _code_lines() for dotted, _ in CODE_REF.findall(line)}
    ops = [f"mlstm.ops.{inspect.getmodule(getattr(mlstm.ops, n)).__name__.split('.')[-1]}.{n}"
           for n in mlstm.ops.__all__ if inspect.isfunction(getattr(mlstm.ops, n))
           and n not in ("get_activation",)]
    wanted = ops + [
        "mlstm.losses.reduce_output_loss", "mlstm.losses.MeanSquaredError.gradient",
        "mlstm.losses.BinaryCrossentropy.gradient",
        "mlstm.losses.BinaryCrossentropy.gradient_logits",
        "mlstm.optimizers.Adam", "mlstm.optimizers.SGD", "mlstm.graph.Graph.backward",
        "mlstm.training.Trainer.loss_and_output_grads", "mlstm.layers.Masking.backward"]
    missing = sorted(set(wanted) - named)
    assert not missing, f"not named by any docs page: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_on_the_page_run(page):
    result = doctest.testfile(str(DOCS / page), module_relative=False, report=True,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0
    if page != "index.md":
        assert result.attempted > 0, f"{page} has no >>> examples"


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (DOCS / target).exists(), f"{page} links {target}, which does not exist"


@pytest.mark.torch
def test_adam_epsilon_relation_against_pytorch():
    """docs/optimizers.md: Keras-form Adam with ε̂_t = ε·sqrt(1 - β2^t) takes PyTorch's steps."""
    import torch

    # β exactly representable in float32, so Keras' float32 cast of β changes nothing.
    beta_1, beta_2, eps, lr = 0.875, 1 - 2 ** -10, 1e-8, 1e-2
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(6) * np.array([1, 1e-3, 1e-6, 1e-8, 1e-9, 0])
             for _ in range(5)]                      # entries where ε matters, and where not
    theta0 = rng.standard_normal(6)
    param = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    torch_adam = torch.optim.Adam([param], lr=lr, betas=(beta_1, beta_2), eps=eps)
    ours = {"w": theta0.copy()}
    adam = mlstm.optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2)
    constant = {"w": theta0.copy()}
    adam_constant = mlstm.optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=eps)
    for t, g in enumerate(grads, start=1):
        param.grad = torch.tensor(g, dtype=torch.float64)
        torch_adam.step()
        adam.epsilon = eps * np.sqrt(1 - beta_2 ** t)  # the relation
        adam.apply(ours, {"w": g})
        adam_constant.apply(constant, {"w": g})
        np.testing.assert_allclose(ours["w"], param.detach().numpy(), rtol=1e-13, atol=1e-15)
    # With the same constant epsilon the two forms part where sqrt(v) is comparable to ε.
    assert np.max(np.abs(constant["w"] - param.detach().numpy())) > 1e-4
