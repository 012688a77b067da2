"""Speech-conditioned latent diffusion: a wrapper whose forward returns the standard diffusion loss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from voxemoset.models.resolve import resolve_checkpoint
from voxemoset.train.sib import SIB

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]  # every attention projection, as diffusers' LoRA scripts


@dataclass
class Diffusion:
    """The pretrained SD pieces: UNet, VAE, training noise scheduler, and the folder they came from."""

    unet: nn.Module
    vae: nn.Module
    scheduler: object
    path: Path


def load_diffusion(pretrained: str) -> Diffusion:
    """UNet, VAE and scheduler from an SD-1.5-layout folder (unet/, vae/, scheduler/), never downloading."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from voxemoset.train.config import SD15_ID

    path = resolve_checkpoint(pretrained, "Stable Diffusion 1.5 (UNet + VAE)", SD15_ID, marker="unet/config.json")
    unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
    scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler")
    return Diffusion(unet, vae, scheduler, Path(path))


def add_lora(unet: nn.Module, rank: int, alpha: int | None) -> None:
    """Attach a peft LoRA adapter named "default" to the UNet's attention projections."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS)
    unet.add_adapter(config)


class SpeechToImage(nn.Module):
    """SIB tokens condition a UNet; forward(batch) -> MSE between the UNet output and its target."""

    def __init__(self, sib: SIB, unet: nn.Module, vae: nn.Module, scheduler, cond_dropout: float):
        super().__init__()
        self.sib, self.unet, self.vae = sib, unet, vae
        self.scheduler = scheduler
        self.cond_dropout = cond_dropout
        self.scaling = float(vae.config.scaling_factor)
        self.prediction_type = scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"unsupported prediction type {self.prediction_type!r}")

    @torch.no_grad()
    def latents(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """Scaled image latents: a sample of the cached posterior, or of the VAE's encoding of the pixels."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        vae_dtype = next(self.vae.parameters()).dtype
        if "moments" in batch:
            posterior = DiagonalGaussianDistribution(batch["moments"].float())
        else:
            posterior = self.vae.encode(batch["pixel_values"].to(vae_dtype)).latent_dist
        return posterior.sample(generator=generator).float() * self.scaling

    def condition(
        self, frames: torch.Tensor, mask: torch.Tensor, drop: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """SIB tokens and their mask; rows where `drop` is True get the null tokens (all positions attended)."""
        tokens, token_mask = self.sib(frames, mask)
        if drop is None:
            return tokens, token_mask
        null = self.sib.null(tokens.shape[0], tokens.shape[1]).to(tokens.dtype)
        # torch.where keeps null_token in the graph even when nothing is dropped: DDP needs every grad every step.
        tokens = torch.where(drop[:, None, None], null, tokens)
        token_mask = token_mask | drop[:, None]
        return tokens, token_mask

    def condition_batch(self, batch: dict, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The UNet's cross-attention tokens (and mask) of a batch: here the SIB over speech frames."""
        return self.condition(batch["frames"], batch["frame_mask"], drop)

    def forward(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """The diffusion loss of one batch; all randomness comes from `generator` (so resumes are exact)."""
        latents = self.latents(batch, generator)
        b, device = latents.shape[0], latents.device
        noise = torch.randn(latents.shape, generator=generator, device=device)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (b,), generator=generator, device=device)
        drop = torch.rand(b, generator=generator, device=device) < self.cond_dropout
        tokens, token_mask = self.condition_batch(batch, drop)
        noisy = self.scheduler.add_noise(latents, noise, t)
        unet_dtype = next(self.unet.parameters()).dtype
        pred = self.unet(
            noisy.to(unet_dtype),
            t,
            encoder_hidden_states=tokens.to(unet_dtype),
            encoder_attention_mask=token_mask,
        ).sample
        target = noise if self.prediction_type == "epsilon" else self.scheduler.get_velocity(latents, noise, t)
        return F.mse_loss(pred.float(), target.float())
