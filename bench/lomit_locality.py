"""How local is LOMIT's translation? Mean absolute change outside vs inside the object mask, on the toy world.

Trains two small LOMIT models briefly on the embedded toy world (simulator frames restyled after photo exemplars of
other streets): one with learned masks (the paper's method), one with the given car masks (``mask_source="given"``).
Then translates fixed test pairs and reports, in [0, 1] units averaged over channels, the mean |output - input|
outside the input's car mask and inside it, with and without ``paste_outside_mask``:

    OMP_NUM_THREADS=2 python bench/lomit_locality.py                     # about 2 minutes on 2 quiet cores
    python bench/lomit_locality.py --size 64 --iterations 300             # closer to converged (about 12 minutes)

A local method changes little outside the mask; with given binary masks and pasting, nothing at all.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from zoo.data import MaskedDataModule
from zoo.methods import LOMIT


def train(model: LOMIT, data: MaskedDataModule, iterations: int) -> float:
    """``iterations`` official iterations on shuffled toy batches; returns the seconds taken."""
    optimizers, _ = model.configure_optimizers()
    model.train()
    start, done = time.perf_counter(), 0
    while done < iterations:
        for batch in data.train_dataloader():
            model.optimization_step(batch["real_a"], batch["real_b"], batch["attr_a"], batch["attr_b"],
                                    batch["mask_a"], batch["mask_b"], *optimizers, iteration=done)
            done += 1
            if done == iterations:
                break
    return time.perf_counter() - start


def change(out: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean |out - images| (channel-averaged, [0, 1] units) outside and inside ``mask`` (pixels counted per image)."""
    diff = (out - images).abs().mean(1, keepdim=True)
    outside = (diff * (1 - mask)).sum() / (1 - mask).sum().clamp_min(1)
    inside = (diff * mask).sum() / mask.sum().clamp_min(1)
    return outside.item(), inside.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=150, help="training iterations per model")
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--width", type=int, default=16, help="generator and discriminator base width")
    parser.add_argument("--test-pairs", type=int, default=16)
    parser.add_argument("--classes", nargs="+", default=["car"], help="toy-world classes forming the masks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    data = MaskedDataModule(root=None, image_size=args.size, toy_classes=args.classes, toy_length=400,
                            toy_test_length=args.test_pairs, batch_size=args.batch_size, val_size=2, seed=args.seed)
    data.setup("fit")
    test = data.fixed_batch(args.test_pairs, split="test")
    images, exemplars = (test["real_a"] + 1) / 2, (test["real_b"] + 1) / 2
    mask_a, mask_b = test["mask_a"], test["mask_b"]
    d_repeat = max(1, min(6, (args.size // 4).bit_length() - 1))
    common = dict(c_dim=2, image_size=args.size, g_conv_dim=args.width, g_repeat_num=4, style_dim=8,
                  mlp_dim=4 * args.width, d_conv_dim=args.width, d_repeat_num=d_repeat, n_critic=1)

    rows = []
    for source in ("learned", "given"):
        torch.manual_seed(args.seed)
        model = LOMIT(mask_source=source, **common)
        seconds = train(model, data, args.iterations)
        model.eval()
        variants = [(source, None, None)]
        if source == "learned":  # the user's masks at inference, on the model that learned its own
            variants.append(("learned model, given masks", mask_a, mask_b))
        else:
            variants = [(source, mask_a, mask_b)]
        for name, m_a, m_b in variants:
            for paste in (False, True):
                model.hparams.paste_outside_mask = paste
                out = model.translate(images, exemplar=exemplars, mask=m_a, exemplar_mask=m_b, seed=0)
                outside, inside = change(out, images, mask_a)
                rows.append({"masks": name, "paste_outside_mask": paste, "change_outside": outside,
                             "change_inside": inside, "ratio_inside_outside": inside / outside if outside > 0 else None,
                             "train_seconds": seconds})
        model.hparams.paste_outside_mask = False

    print(f"LOMIT locality on the toy world: {args.iterations} iterations, {args.size}x{args.size}, batch "
          f"{args.batch_size}, width {args.width}, masks of {args.classes}, {args.test_pairs} test pairs")
    print(f"{'masks':28s} {'paste':>5s} {'outside':>9s} {'inside':>9s} {'in/out':>7s}")
    for r in rows:
        ratio = "inf" if r["ratio_inside_outside"] is None else f"{r['ratio_inside_outside']:.2f}"
        print(f"{r['masks']:28s} {str(r['paste_outside_mask']):>5s} {r['change_outside']:9.4f} "
              f"{r['change_inside']:9.4f} {ratio:>7s}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
