"""The LeNet-5/MNIST application behind `tinygrad-cnn train` and `eval`: training loop, checkpoints, metrics."""
