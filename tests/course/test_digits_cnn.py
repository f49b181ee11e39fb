"""course.digits_cnn: real CNN feature maps from a tiny CNN trained on the digits."""

import torch

from notebooks.course import digits_cnn


def test_digits_cnn_features_and_short_training():
    scene = digits_cnn.digit_mosaic(n=3, seed=0)
    assert scene.shape == (24, 24) and 0 <= scene.min() and scene.max() <= 1
    model, acc = digits_cnn.train_digits_cnn(digits_cnn.DigitsConfig(epochs=4, width=8))  # a narrow, short run (the notebook: 32, 15)
    assert acc > 0.3  # ten classes: chance is 0.1
    X = digits_cnn.feature_matrix(model, scene)
    assert X.shape == (16, 24 * 24) and X.dtype == torch.float64 and (X >= 0).all()
    assert not model.training
