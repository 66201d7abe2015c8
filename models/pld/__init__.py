"""Pose Latent Diffusion (PoseTalk's PLD): head pose + gaze from audio and a text prompt.

A pose VAE (vae.py) squeezes 32-frame windows of pose+gaze into 8 latent tokens; a small U-ViT
denoiser (denoiser.py) generates those latents from noise, conditioned on the prompt embedding
(text.py), the window's audio and the frames already committed; samplers.py holds the sampling
contract and the EDM scaling; stream.py runs it hop by hop. Importing this package is cheap: the
submodules load torch and the sentence encoder only when used."""
