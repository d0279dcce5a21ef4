"""The generator zoo: train generators on real photographs and sample a labelled benchmark."""
