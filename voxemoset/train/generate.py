"""`voxemoset generate`: speech -> image with a trained checkpoint, through diffusers' StableDiffusionPipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from voxemoset.errors import UserError
from voxemoset.train.config import TrainConfig
from voxemoset.train.sib import SIB


def sd_pipeline(sd, checkpoint: Path | None, mode: str | None, text_encoder=None, tokenizer=None):
    """diffusers' StableDiffusionPipeline (DDIM) over a loaded SD-1.5, with the checkpoint's UNet when its training
    mode made one (`full`: its unet/; `lora`: its adapter on the base UNet; `frozen`/None: the base UNet)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    from voxemoset.train.loop import LORA_WEIGHTS

    unet = UNet2DConditionModel.from_pretrained(Path(checkpoint) / "unet") if mode == "full" else sd.unet
    pipe = StableDiffusionPipeline(
        vae=sd.vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler.from_config(sd.scheduler.config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if mode == "lora":
        # The UNet half of diffusers' LoRA loader (the pipeline's would also look for text-encoder keys).
        unet.load_lora_adapter(checkpoint, weight_name=LORA_WEIGHTS, prefix="unet", adapter_name="default")
    pipe.set_progress_bar_config(disable=True)
    return pipe


class SpeechToImagePipeline:
    """A checkpoint ready to sample: SIB tokens as `prompt_embeds`, its null tokens as `negative_prompt_embeds`."""

    def __init__(self, checkpoint: Path, device: str | None = None, encoder_model: str | None = None):
        from voxemoset.train.model import load_diffusion

        checkpoint = Path(checkpoint)
        if not (checkpoint / "train_config.json").is_file():
            raise UserError(f"{checkpoint}: not a training checkpoint (no train_config.json)")
        self.cfg = TrainConfig.model_validate_json((checkpoint / "train_config.json").read_text())
        if self.cfg.conditioning != "speech":
            raise UserError(f"{checkpoint}: a text-conditioned baseline; evaluate it as system kind text_finetuned")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        sd = load_diffusion(self.cfg.pretrained)
        # Speech replaces text: the SIB supplies prompt_embeds directly, so the pipeline has no text encoder.
        self.pipe = sd_pipeline(sd, checkpoint, self.cfg.mode)
        self.pipe.to(self.device)
        if self.dtype != torch.float32:
            self.pipe.to(dtype=self.dtype)
        self.sib = SIB.load(checkpoint / "sib").to(self.device).eval()
        self.encoder_model = encoder_model or self.cfg.encoder.model
        self._whisper = None

    def frames(self, speech: Path | np.ndarray) -> torch.Tensor:
        """Frame embeddings (N, D) of a speech file, a 16 kHz array, or a .safetensors of precomputed frames."""
        from voxemoset.audio import OUT_RATE
        from voxemoset.train.encoders import WhisperFrames

        if isinstance(speech, Path | str) and str(speech).endswith(".safetensors"):
            from safetensors.torch import load_file

            tensors = list(load_file(str(speech)).values())
            if len(tensors) != 1 or tensors[0].ndim != 2:
                raise UserError(f"{speech}: expected one (frames, dim) tensor")
            return tensors[0].float()
        if self.cfg.encoder.kind != "whisper":
            raise UserError(
                f"this checkpoint was trained on {self.cfg.encoder.kind} embeddings: encode the speech with "
                "scripts/encode_sonar.py --wav FILE --out FILE.safetensors and pass that file as --speech"
            )
        if isinstance(speech, Path | str):
            from voxemoset.audio import AudioReadError, load_audio, resample

            try:
                samples, rate = load_audio(speech)
            except AudioReadError as e:
                raise UserError(f"cannot read speech: {e}") from None
            speech = resample(samples, rate, OUT_RATE)
        if self._whisper is None:
            self._whisper = WhisperFrames(self.encoder_model, self.device, self.dtype)
        frames, mask = self._whisper([speech])
        return frames[0, : int(mask[0].sum())].float()

    @torch.no_grad()
    def __call__(
        self, frames: torch.Tensor, guidance_scale: float = 7.5, steps: int = 50, seed: int = 0, resolution=None
    ):
        """One PIL image from (N, D) frames."""
        if frames.shape[-1] != self.sib.spec.in_dim:
            raise UserError(f"speech frames are {frames.shape[-1]} wide; this SIB expects {self.sib.spec.in_dim}")
        tokens, _ = self.sib(frames[None].to(self.device))
        null = self.sib.null(1, tokens.shape[1])
        size = resolution or self.cfg.resolution
        generator = torch.Generator(self.device).manual_seed(seed)
        out = self.pipe(
            prompt_embeds=tokens.to(self.dtype),
            negative_prompt_embeds=null.to(self.dtype),
            guidance_scale=guidance_scale,
            num_inference_steps=steps,
            generator=generator,
            height=size,
            width=size,
        )
        return out.images[0]

    @torch.no_grad()
    def batch(
        self,
        frames: list[torch.Tensor],
        seeds: list[int],
        guidance_scale: float = 7.5,
        steps: int = 50,
        resolution=None,
    ) -> list:
        """One PIL image per (N_i, D) frames, denoised together: padded tokens are masked out of the UNet's
        cross-attention (as in training), and image i starts from seed i's noise, as a call on its own would."""
        from diffusers.utils.torch_utils import randn_tensor

        pipe, unet, scheduler = self.pipe, self.pipe.unet, self.pipe.scheduler
        lengths = torch.tensor([f.shape[0] for f in frames])
        padded = torch.nn.utils.rnn.pad_sequence([f.float() for f in frames], batch_first=True).to(self.device)
        tokens, mask = self.sib(padded, (torch.arange(padded.shape[1])[None] < lengths[:, None]).to(self.device))
        guided = guidance_scale > 1
        if guided:  # [null, speech] as the pipeline orders them; the null tokens are all attended
            tokens = torch.cat([self.sib.null(len(frames), tokens.shape[1]), tokens])
            mask = torch.cat([torch.ones_like(mask), mask])
        size = resolution or self.cfg.resolution
        shape = (len(frames), unet.config.in_channels, size // pipe.vae_scale_factor, size // pipe.vae_scale_factor)
        generators = [torch.Generator(self.device).manual_seed(s) for s in seeds]
        latents = randn_tensor(shape, generator=generators, device=self.device, dtype=self.dtype)
        scheduler.set_timesteps(steps, device=self.device)
        latents = latents * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            x = scheduler.scale_model_input(torch.cat([latents] * 2) if guided else latents, t)
            noise = unet(x, t, encoder_hidden_states=tokens.to(self.dtype), encoder_attention_mask=mask).sample
            if guided:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance_scale * (cond - uncond)
            latents = scheduler.step(noise, t, latents, eta=0.0).prev_sample
        images = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
        return pipe.image_processor.postprocess(images, output_type="pil")


def generate(
    checkpoint: Path,
    speech: Path,
    out_png: Path,
    guidance_scale: float = 7.5,
    steps: int = 50,
    seed: int = 0,
    encoder_model: str | None = None,
) -> Path:
    """Write one PNG generated from a speech file (or precomputed frames) with a trained checkpoint."""
    speech, out_png = Path(speech), Path(out_png)
    if not speech.is_file():
        raise UserError(f"speech file not found: {speech}")
    pipe = SpeechToImagePipeline(checkpoint, encoder_model=encoder_model)
    image = pipe(pipe.frames(speech), guidance_scale=guidance_scale, steps=steps, seed=seed)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(out_png.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(out_png)
    return out_png
