"""Subfigures: compound figures split into panels, captions into subcaptions, paired.

`boxes` (the Box, reading order, the table contract, the detector interface), `gutter`
(no model: XY-cut on white/black separators), `model` (a torchvision detector trained on
`synthetic` compound figures), `captions` (caption splitting), `pairing` (panel <->
subcaption, rows of the table), `run` (the resumable curate step), `metrics` (mAP, IoU,
figure-level accuracy, subcaption exact match).
"""
