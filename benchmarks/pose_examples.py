"""Example predictions of a pose model, for the README: skeletons drawn over held-out
synthetic figures and over real photographs (MPII JSON or any annotation file, framed by
each person's centre and scale).

    python benchmarks/pose_examples.py --model RUN --out docs/img \
        --real ../shared/data/mpii-sample/test_mpii.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from sagan.pose.data import read_annotations
from sagan.pose.datasets import person_box
from sagan.pose.predict import draw_skeleton, predict_image
from sagan.pose.synthetic import render_person
from sagan.pose.train import load_pose_model


def _row(images: list[Image.Image], height: int) -> Image.Image:
    scaled = [im.resize((round(im.width * height / im.height), height)) for im in images]
    out = Image.new("RGB", (sum(im.width for im in scaled) + 4 * (len(scaled) - 1), height))
    x = 0
    for im in scaled:
        out.paste(im, (x, 0))
        x += im.width + 4
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="pose run folder or checkpoint")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    p.add_argument("--real", type=Path, help="annotations of real images to draw on")
    p.add_argument("--n", type=int, default=8, help="synthetic figures")
    args = p.parse_args()
    G, cfg = load_pose_model(args.model)
    res, heat = cfg.train.resolution, cfg.train.heatmap
    args.out.mkdir(parents=True, exist_ok=True)
    figures = []
    for i in range(args.n):  # the held-out figures' seed stream (as validation_set)
        person = render_person(res, np.random.Generator(np.random.PCG64([10_000, i])))
        image = Image.fromarray(person.image).resize((4 * res, 4 * res), Image.Resampling.NEAREST)
        joints = predict_image(G, Image.fromarray(person.image), res, heat)
        figures.append(draw_skeleton(image, (joints + 0.5) * 4 - 0.5))
    _row(figures, 4 * res).save(args.out / "pose-synthetic.png")
    print(f"wrote {args.out / 'pose-synthetic.png'}")
    if args.real is not None:
        shots = []
        for person in read_annotations(args.real):
            with Image.open(args.real.parent / person.image) as f:
                image = f.convert("RGB")
            x0, y0, side, _ = box = person_box(person)  # framed as in training
            joints = predict_image(G, image, res, heat, box=box)
            shot = draw_skeleton(image, joints)
            pad = side * 0.125  # show the crop: a quarter more than the box
            left, top = max(0, int(x0 - pad)), max(0, int(y0 - pad))
            shots.append(shot.crop((left, top, int(x0 + side + pad), int(y0 + side + pad))))
        _row(shots, 256).save(args.out / "pose-mpii.png")
        print(f"wrote {args.out / 'pose-mpii.png'}")


if __name__ == "__main__":
    main()
