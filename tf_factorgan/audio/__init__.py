"""Audio signal path: files (`io`), resampling and spectrograms (`spectrogram`), model
windows (`windows`) and separation into vocals and accompaniment (`separation`)."""
