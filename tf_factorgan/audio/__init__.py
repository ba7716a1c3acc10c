"""Audio signal path: resampling, STFT/ISTFT and magnitude spectrograms."""
