import hashlib
import json
import shutil

import pytest
import torch

from course_lib import zoo
from course_lib.datasets import ShapesDataset, stack_samples
from course_lib.metrics import boundary_f1
from course_lib.train import evaluate, predict

SHIPPED = ("single_scale", "multiscale", "recurrent")
#: The networks lectures 02 and 04 load in QUICK mode (small, fast to retrain on one thread).
LECTURE_NETS = ("erf_allconv", "allconv_rf13", "imbalance_ce", "imbalance_wce",
                "imbalance_focal")
MANIFEST = zoo.manifest()
#: Lecture 07's encoder-decoders: one shared recipe, up to ~3 MB each (float32).
ENCDEC_NETS = ("unet", "segnet", "deeplabv3plus", "tiramisu")


def _size_budget(name: str) -> int:
    return 3_000_000 if name in ENCDEC_NETS else 1_000_000


def test_manifest_lists_every_shipped_checkpoint_with_its_recipe():
    assert set(SHIPPED) | set(LECTURE_NETS) <= set(zoo.names())
    for name, record in MANIFEST.items():
        recipe = json.loads(json.dumps(zoo.RECIPES[name]))  # tuples -> lists, as in JSON
        assert {k: record[k] for k in recipe} == recipe, f"{name}: manifest != RECIPES"
        for key in ("sha256", "size_bytes", "train_seconds", "torch_version", "metrics",
                    "history", "num_params", "file"):
            assert key in record, f"{name} lacks {key}"
        assert record["builder"].startswith("course_lib.models.")
        assert set(record["data"]) == {"train", "val"}
        assert ("epochs" in record["fit"]) != ("steps" in record["fit"])
        assert record["file"] == f"{name}.pt"


def test_checkpoints_are_small_plain_float32_state_dicts():
    total = 0
    for name, record in MANIFEST.items():
        path = zoo.CHECKPOINT_DIR / record["file"]
        assert path.stat().st_size == record["size_bytes"] <= _size_budget(name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
        state = torch.load(path, weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
        total += record["size_bytes"]
    assert total < 25 * 2**20


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_shipped_checkpoint_reproduces_its_recorded_scores(name):
    record = MANIFEST[name]
    model = zoo.load(name)
    assert model.training is False
    assert sum(p.numel() for p in model.parameters()) == record["num_params"]
    scores = evaluate(model, ShapesDataset(**record["data"]["val"]),
                      num_classes=record["kwargs"]["num_classes"], device="cpu", batch_size=50)
    assert scores["miou"] == pytest.approx(record["metrics"]["miou"], abs=0.01)
    assert scores["pixel_acc"] == pytest.approx(record["metrics"]["pixel_acc"], abs=0.01)
    assert record["history"]["val_miou"][-1] == pytest.approx(record["metrics"]["miou"], abs=1e-3)
    if "boundary_f1" in record["metrics"]:  # recorded by zoo.train since the FCNs
        images, masks = stack_samples(ShapesDataset(**record["data"]["val"]))
        bf1 = boundary_f1(predict(model, images, device="cpu"), masks,
                          num_classes=record["kwargs"]["num_classes"])
        assert bf1 == pytest.approx(record["metrics"]["boundary_f1"], abs=0.01)


def test_checkpoint_sizes_stay_within_budget():
    # At most ~1 MB per checkpoint (~3 MB for lecture 07's), under 25 MB for all of them
    # (every file of the folder).
    files = sorted(zoo.CHECKPOINT_DIR.glob("*.pt"))
    assert {f.name for f in files} >= {r["file"] for r in MANIFEST.values()}
    sizes = {f.name: f.stat().st_size for f in files}
    assert all(size <= _size_budget(name[:-3]) for name, size in sizes.items()), sizes
    assert sum(sizes.values()) + (zoo.CHECKPOINT_DIR / "MANIFEST.json").stat().st_size \
        < 25 * 10**6, sizes


@pytest.mark.parametrize("name", LECTURE_NETS)
def test_lecture_networks_are_small_and_quick_to_retrain(name):
    record = MANIFEST[name]
    assert record["size_bytes"] <= 1_000_000 and record["num_params"] < 100_000
    assert record["train_seconds"] <= 330  # about 5 minutes of one CPU thread, at most
    assert record["num_threads"] == 1
    assert record["data"]["val"]["length"] <= 200  # the re-evaluation above stays fast


def test_lecture_networks_support_the_claims_of_their_lectures():
    # "background everywhere" scores a pixel accuracy of 0.79 on this val set
    assert MANIFEST["erf_allconv"]["metrics"]["pixel_acc"] > 0.79 + 0.1  # really trained
    assert MANIFEST["allconv_rf13"]["metrics"]["miou"] > 0.3
    fit = {name: {k: v for k, v in MANIFEST[name]["fit"].items() if k != "loss"}
           for name in ("imbalance_ce", "imbalance_wce", "imbalance_focal")}
    assert fit["imbalance_ce"] == fit["imbalance_wce"] == fit["imbalance_focal"]
    wce = zoo.RECIPES["imbalance_wce"]["fit"]["loss"]
    assert MANIFEST["imbalance_wce"]["fit"]["loss"] == str(wce)
    assert wce.weight == tuple(json.loads(str(wce).split(":", 1)[1]))


FCN_NETS = ("fcn32s", "fcn16s", "fcn8s")


def test_fcns_share_one_recipe_and_are_ordered_like_the_paper():
    # Long et al. 2015, PASCAL VOC 2011 val mean IU: 59.4 < 62.4 < 62.7 for 32s < 16s < 8s.
    recipes = [{k: v for k, v in MANIFEST[n].items() if k in ("data", "fit", "num_threads")}
               for n in FCN_NETS]
    assert recipes[0] == recipes[1] == recipes[2]
    assert {MANIFEST[n]["kwargs"]["width"] for n in FCN_NETS} == {6}
    for key in ("miou", "boundary_f1"):
        scores = [MANIFEST[n]["metrics"][key] for n in FCN_NETS]
        assert scores[0] < scores[1] < scores[2], (key, scores)
    for name in FCN_NETS:
        assert MANIFEST[name]["size_bytes"] <= 1_000_000
        assert MANIFEST[name]["train_seconds"] <= 900  # ~15 min of one CPU thread at most


def test_encoder_decoders_share_one_recipe_and_beat_the_fcns():
    # lecture 07: the same data (80,000 generated images, each seen once), steps, optimizer
    # and schedule for the four, scored on the FCNs' val set; `make bench` states whether
    # the best reaches lecture 07's target (val mIoU >= 0.97)
    recipes = [{k: v for k, v in MANIFEST[n].items() if k in ("data", "fit", "num_threads")}
               for n in ENCDEC_NETS]
    assert all(r == recipes[0] for r in recipes)
    data, fit = recipes[0]["data"]["train"], recipes[0]["fit"]
    assert data["length"] == fit["steps"] * fit["batch_size"] > 2000
    assert recipes[0]["data"]["val"] == MANIFEST["fcn8s"]["data"]["val"]
    for name in ENCDEC_NETS:
        metrics, fcn8s = MANIFEST[name]["metrics"], MANIFEST["fcn8s"]["metrics"]
        assert metrics["miou"] > fcn8s["miou"] and metrics["boundary_f1"] > fcn8s[
            "boundary_f1"], name
        assert MANIFEST[name]["size_bytes"] <= 3_000_000
    assert max(MANIFEST[n]["metrics"]["miou"] for n in ENCDEC_NETS) >= 0.97  # the target


def test_shipped_scores_are_sensible_and_ordered_like_the_papers():
    miou = {name: MANIFEST[name]["metrics"]["miou"] for name in SHIPPED}
    assert all(v > 0.3 for v in miou.values()), miou
    assert miou["multiscale"] > miou["single_scale"], miou  # Farabet: context helps


def _copy(tmp_path, name):
    out = tmp_path / "ckpt"
    out.mkdir()
    shutil.copy(zoo.CHECKPOINT_DIR / MANIFEST[name]["file"], out)
    (out / "MANIFEST.json").write_text(json.dumps({name: MANIFEST[name]}))
    return out


def test_load_checks_sha256(tmp_path):
    out = _copy(tmp_path, "single_scale")
    assert zoo.load("single_scale", checkpoint_dir=out).training is False
    path = out / "single_scale.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 mismatch.*corrupted or stale"):
        zoo.load("single_scale", checkpoint_dir=out)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="zoo train single_scale"):
        zoo.load("single_scale", checkpoint_dir=out)


def test_load_and_train_reject_unknown_names(tmp_path):
    with pytest.raises(ValueError, match=r"no checkpoint named 'nope'.*available: \["):
        zoo.load("nope")
    with pytest.raises(ValueError, match="no recipe named 'nope'"):
        zoo.train("nope", out_dir=tmp_path)
    with pytest.raises(ValueError, match="builder must be a dotted path under course_lib.models"):
        zoo.build("os.system", {})
    with pytest.raises(ValueError, match="does not exist"):
        zoo.build("course_lib.models.context.nothing_here", {})
    assert zoo.manifest(tmp_path) == {} and zoo.names(tmp_path) == []


TINY = {
    "description": "a few steps of a tiny net, for the determinism test",
    "builder": "course_lib.models.context.recurrent_cnn",
    "kwargs": {"num_classes": 4, "iterations": 2, "width": 4, "hidden": 8},
    "data": {"train": {"split": "train", "length": 12, "image_size": 32, "seed": 1},
             "val": {"split": "val", "length": 4, "image_size": 32, "seed": 1}},
    "fit": {"steps": 4, "lr": 1e-2, "batch_size": 4, "optimizer": "adam", "seed": 2,
            "loss": "ce"},
    "num_threads": 1,
}


def test_train_is_deterministic_and_writes_a_loadable_record(tmp_path, monkeypatch):
    monkeypatch.setitem(zoo.RECIPES, "tiny", TINY)
    threads = torch.get_num_threads()
    a = zoo.train("tiny", out_dir=tmp_path / "a", progress=False)
    b = zoo.train("tiny", out_dir=tmp_path / "b", progress=False)
    assert torch.get_num_threads() == threads  # restored
    assert a["sha256"] == b["sha256"] and a["metrics"] == b["metrics"]
    assert zoo.names(tmp_path / "a") == ["tiny"]
    record = zoo.manifest(tmp_path / "a")["tiny"]
    assert record["sha256"] == zoo.sha256(tmp_path / "a" / "tiny.pt") == a["sha256"]
    assert record["torch_version"] == torch.__version__
    assert len(record["history"]["seconds"]) == 2  # 4 steps, 3 per epoch: two entries
    model = zoo.load("tiny", checkpoint_dir=tmp_path / "a")
    scores = evaluate(model, ShapesDataset(**TINY["data"]["val"]), num_classes=4)
    assert scores["miou"] == pytest.approx(record["metrics"]["miou"])


def test_cli_list_and_argument_errors(capsys, tmp_path):
    assert zoo.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SHIPPED) and "mIoU" in out
    with pytest.raises(SystemExit):
        zoo.main(["train"])
    assert "names or --all" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        zoo.main(["train", "nope"])
    assert "unknown names ['nope']" in capsys.readouterr().err
