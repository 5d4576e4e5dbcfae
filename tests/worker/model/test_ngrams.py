"""The n-gram member: its keys, its TF-IDF against scikit-learn's, its fit against scikit-learn's logistic
regression, its file, and a version that serves it (the blend in ``LoadedModel``, whatever the backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.ngram_fit import choose_blend, fit_member
from worker.errors import ModelError
from worker.model.backends.base import read_config
from worker.model.load import load_model
from worker.model.ngrams import NGRAMS_FILE, NgramMember, NgramSpec, ngram_keys
from worker.model.repository import MANIFEST_NAME, read_manifest

pytest.importorskip("sklearn")

IDS = [[1, 5, 7, 2], [1, 5, 2], [1, 2], [1, 7, 7, 7, 2]]


def _ngrams_of(row: list[int], max_n: int) -> list[tuple[int, ...]]:
    return [tuple(row[i : i + k]) for k in range(1, max_n + 1) for i in range(len(row) - k + 1)]


def _key(gram: tuple[int, ...], base: int) -> int:
    key = 0
    for token in gram:
        key = key * base + token + 1
    return key


def test_keys_are_every_ngram_of_each_row_and_distinct_across_orders() -> None:
    base = 9
    row, key = ngram_keys(IDS, 3, base)
    want = [(r, _key(g, base)) for r, ids in enumerate(IDS) for g in _ngrams_of(ids, 3)]
    assert sorted(zip(row.tolist(), key.tolist(), strict=True)) == sorted(want)
    grams = {g for ids in IDS for g in _ngrams_of(ids, 3)}
    assert len({_key(g, base) for g in grams}) == len(grams)  # (1, 5) and (6,) or (0, 7) never meet
    assert ngram_keys([[], [3]], 2, base)[1].tolist() == [4]
    assert ngram_keys([[3, 8, 3], [-1]], 2, base)[1].tolist() == [4, 4]  # 8 and -1 are outside 0..base-2
    assert ngram_keys([], 3, base)[1].tolist() == []


def _vectorizer(max_n: int) -> object:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=lambda ids: _ngrams_of(list(ids), max_n), min_df=2, sublinear_tf=True)


def _random_rows(rng: np.random.Generator, n: int, vocab: int) -> list[list[int]]:
    return [[1, *rng.integers(3, vocab, rng.integers(1, 12)).tolist(), 2] for _ in range(n)]


def test_features_and_fit_match_scikit_learn() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    vocab = 40
    ids = _random_rows(rng, 400, vocab)
    hard = np.stack([[3 in r or 4 in r for r in ids], [len(r) > 8 for r in ids]], axis=1).astype(np.float32)
    member = fit_member(ids, hard, vocab + 1, max_n=3, min_df=2, c=20.0)

    vectorizer = _vectorizer(3)
    matrix = vectorizer.fit_transform(ids)  # type: ignore[attr-defined]
    assert len(member.keys) == matrix.shape[1]
    rows, features, values = member.features(ids)
    ours = np.zeros(matrix.shape, np.float32)
    ours[rows, features] = values
    order = np.argsort([_key(g, vocab + 1) for g in vectorizer.get_feature_names_out()])  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours, matrix.toarray()[:, order], atol=1e-6)

    fresh = _random_rows(rng, 50, vocab)  # mostly n-grams never seen
    for j in range(2):
        want = LogisticRegression(C=20.0, solver="liblinear", max_iter=1000, random_state=0)
        want.fit(matrix, hard[:, j])
        np.testing.assert_allclose(
            member.probabilities(fresh)[:, j], want.predict_proba(vectorizer.transform(fresh))[:, 1], atol=1e-5
        )  # type: ignore[attr-defined]


def test_blend_keeps_the_member_only_where_it_helps() -> None:
    rng = np.random.default_rng(1)
    ids = _random_rows(rng, 300, 30)
    hard = np.array([[5 in r] for r in ids], np.float32)
    member = fit_member(ids, hard, 31)
    useless = rng.random((300, 1)).astype(np.float32)  # an encoder that knows nothing
    blend = choose_blend(member, ids, hard, useless, ["x"])
    assert blend.member is not None and blend.member.spec.encoder_weight < 1.0
    perfect = hard.copy()  # an encoder that knows all
    assert choose_blend(member, ids, hard, perfect, ["x"]).member is None
    assert set(blend.scores) == {0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0}


def test_file_round_trip_and_refusals(tmp_path: Path) -> None:
    spec = NgramSpec(max_n=2, base=11, encoder_weight=0.4)
    member = NgramMember(
        spec, np.array([3, 7, 20]), np.ones(3, np.float32), np.ones((3, 2), np.float32), np.zeros(2, np.float32)
    )
    member.save(tmp_path)
    loaded = NgramMember.load(tmp_path, spec, 2)
    assert loaded.keys.tolist() == [3, 7, 20] and loaded.spec.encoder_weight == 0.4
    assert loaded.probabilities([]).shape == (0, 2) and loaded.probabilities([[]]).shape == (1, 2)
    with pytest.raises(ModelError, match="shapes"):
        NgramMember.load(tmp_path, spec, 3)
    NgramMember(spec, np.array([7, 3, 20]), member.idf, member.coef, member.intercept).save(tmp_path)
    with pytest.raises(ModelError, match="sorted"):
        NgramMember.load(tmp_path, spec, 2)
    (tmp_path / NGRAMS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="not a readable"):
        NgramMember.load(tmp_path, spec, 2)
    with pytest.raises(ValueError, match="pattern"):
        NgramSpec(file="../elsewhere.safetensors", base=11, encoder_weight=0.5)  # nothing outside the version
    with pytest.raises(ModelError, match="64-bit"):
        NgramMember.load(tmp_path, NgramSpec(max_n=6, base=2**11, encoder_weight=0.5), 2)


def test_a_version_serves_its_blend(tiny_repo: Path, tmp_path: Path) -> None:
    """The member's file and manifest entry added to a version: every backend's probabilities are blended."""
    import shutil

    version = tmp_path / "repo" / "1"
    shutil.copytree(tiny_repo / "1", version)
    plain = load_model(version, device="cpu", dtype="float32")
    texts = ["加油加油", "nice 好球", "裁判看清楚", "哈哈"]
    ids = plain.encode(texts)
    member = fit_member(
        ids * 3, np.tile(np.eye(4, dtype=np.float32), (3, 1)), read_config(version)["vocab_size"] + 1, min_df=1
    )
    member = NgramMember(
        member.spec.model_copy(update={"encoder_weight": 0.25}), member.keys, member.idf, member.coef, member.intercept
    )
    member.save(version)
    manifest = read_manifest(version).model_copy(update={"ngrams": member.spec, "files": {}})
    (version / MANIFEST_NAME).write_text(manifest.model_dump_json(), encoding="utf-8")
    for backend in ("torch", "onnxruntime"):
        blended = load_model(version, device="cpu", dtype="float32", backend=backend)
        assert blended.member is not None
        want = 0.25 * plain.predict_texts(texts) + 0.75 * member.probabilities(ids)
        np.testing.assert_allclose(blended.predict_texts(texts), want, atol=1e-4)
