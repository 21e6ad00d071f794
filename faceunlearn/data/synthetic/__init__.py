"""Procedurally generated aligned faces: the built-in open-set identity dataset.

Every image is a 112×112 RGB crop aligned like insightface's ArcFace crops: for a frontal view
the eyes, nose tip and mouth corners land near the ArcFace 5-point template. A face is a small
3-D model rendered with soft-edged shapes:

* **Identity** (hashed from ``(seed, identity)``): head and jaw ellipsoids (face shape), the
  sizes, positions and shapes of eyes, brows, nose, mouth and ears, skin / hair / iris / lip
  colour, hair line, volume, length and texture (wave frequency / direction), facial hair,
  glasses, cheek blush, and a handful of marks (moles, birthmarks) fixed in face-local
  coordinates, so they move with the head.
  These are what a model has to learn to recognise; ``identity_spread`` scales how far
  identities sit from the mean face.
* **Per image** (hashed from ``(seed, identity, image key, view)``): pose (yaw up to full
  profile, pitch, roll) with the partial re-centring a 5-point aligner does, a small
  alignment error, expression (mouth open / smile, eye closure, brow raise, gaze),
  illumination (directional Lambert shading: ``lighting``; brightness, contrast, colour
  temperature, saturation, sometimes grey-scale: ``colour_jitter``), background and clothing,
  blur, sensor noise, and with probability ``occlusion_prob`` an occluder (sunglasses, face
  mask, hat, hand or a random patch). ``identity_jitter`` redraws a little of every identity
  parameter per image (hair cut, tan, weight), so two images of one person never share exact
  geometry. These are the nuisances a model must become invariant to; the profile views make
  retrieval across pose hard, as in CFP-FP.

Difficulty: the defaults (``DEFAULT_KNOBS``) were set so that ``iresnet_tiny`` trained with
CosFace for ~90 s on one CPU on the default dataset reaches a held-out-identity retrieval mAP
of about 0.75 for profile queries against a frontal gallery and about 0.9 frontal-vs-frontal:
learnable, but far from the ceiling. Colour jitter is the strongest knob (at 1.0 the same
check gives ~0.25 / ~0.55), then lighting, occlusion, noise and blur.

Determinism: all parameters come from counter-based splitmix64 hashes of integer keys, and
every rendering step is per-image vectorised arithmetic, so an image's pixels are a pure
function of ``(seed, knobs, identity, image key, view)`` and do not depend on what else is
rendered in the same batch. Rendering runs at ``render_size`` (56 by default) and is
bilinearly upsampled to 112 (≈1,400 images/s on one CPU core; see
``benchmarks/synthetic_faces.py``).

Layout, in dependency order:

* ``hashing``: splitmix64, ``hash_keys`` and the vectorised draws every parameter comes from;
* ``params``: ``DEFAULT_KNOBS``, ``identity_params`` and ``image_params`` (what varies, and how);
* ``head``: 3-D head geometry (rotations, ellipsoid quadrics, posed and aligned head model);
* ``canvas``: rasterisation helpers (canvas, windows, soft masks, blending, Lambert shading);
* ``draw``: the face-part painters (background, head, ears, features, nose, glasses);
* ``occluders``: face mask, hat, hand and patch occluders;
* ``postprocess``: the camera (colour, blur, noise, quantisation, upsampling);
* ``generator``: ``SyntheticFaceGenerator`` (parameters, rendering, landmarks);
* ``build``: ``build_synthetic_dataset`` (the packed train / holdout / distractor dataset);
* ``preview``: ``preview_grid`` and ``save_preview``.
"""

from faceunlearn.data.synthetic.build import build_synthetic_dataset
from faceunlearn.data.synthetic.generator import SyntheticFaceGenerator
from faceunlearn.data.synthetic.hashing import hash_keys, splitmix64
from faceunlearn.data.synthetic.head import ARCFACE_TEMPLATE
from faceunlearn.data.synthetic.params import DEFAULT_KNOBS, VIEWS, identity_params, image_params
from faceunlearn.data.synthetic.preview import preview_grid, save_preview

__all__ = [
    "ARCFACE_TEMPLATE",
    "DEFAULT_KNOBS",
    "VIEWS",
    "SyntheticFaceGenerator",
    "build_synthetic_dataset",
    "hash_keys",
    "identity_params",
    "image_params",
    "preview_grid",
    "save_preview",
    "splitmix64",
]
