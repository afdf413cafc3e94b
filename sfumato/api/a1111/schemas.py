"""A1111's answers, typed as A1111 types them (``modules/api/models.py``), for the OpenAPI
document and for the clients generated from it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GenerationAnswer(BaseModel):
    images: list[str] = Field(description="The pictures: base64 PNGs carrying their infotext.")
    parameters: dict = Field(description="The request, filled with what ran.")
    info: str = Field(description="A JSON string: seeds, sizes, infotexts, warnings, ...")


class ModelItem(BaseModel):
    title: str = Field(description="'name [hash]': what /options and override_settings take.")
    model_name: str
    hash: str | None
    sha256: str | None
    filename: str
    config: str | None = None


class SamplerItem(BaseModel):
    name: str
    aliases: list[str]
    options: dict[str, str]


class SchedulerItem(BaseModel):
    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float = -1
    need_inner_model: bool = False


class UpscalerItem(BaseModel):
    name: str
    model_name: str | None = None
    model_path: str | None = None
    model_url: str | None = None
    scale: float | None = None


class NamedItem(BaseModel):
    name: str


class VaeItem(BaseModel):
    model_name: str
    filename: str


class LoraItem(BaseModel):
    name: str = Field(description="What <lora:name:weight> in a prompt takes.")
    alias: str
    path: str = Field(description="The file's name (never the server's folders).")
    metadata: dict[str, str] = Field(description="The file's training metadata (tags, ...).")


class Embeddings(BaseModel):
    loaded: dict = Field(default_factory=dict)
    skipped: dict = Field(default_factory=dict)


class Scripts(BaseModel):
    txt2img: list[str] = Field(default_factory=list)
    img2img: list[str] = Field(default_factory=list)


class ProgressState(BaseModel):
    skipped: bool = False
    interrupted: bool = False
    stopping_generation: bool = False
    job: str = ""
    job_count: int = 0
    job_timestamp: str = "0"
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0


class Progress(BaseModel):
    progress: float = Field(description="0 to 1, of your running /sdapi job.")
    eta_relative: float
    state: ProgressState
    current_image: str | None = Field(None, description="The picture so far, base64.")
    textinfo: str | None = None
    current_task: str | None = None


class Options(BaseModel):
    model_config = ConfigDict(extra="allow")

    sd_model_checkpoint: str | None = Field(description="Your default model's title.")
    sd_checkpoint_hash: str | None = None
    samples_format: str = "png"
    CLIP_stop_at_last_layers: int = 1
    sd_vae: str = "Automatic"


class PngInfoRequest(BaseModel):
    image: str = Field(description="The picture in base64 (a data: URL prefix is fine).")


class PngInfo(BaseModel):
    info: str = Field(description="The A1111 infotext ('' when the picture has none).")
    items: dict[str, str] = Field(description="The picture's other text metadata.")
    parameters: dict = Field(description="The settings, under the infotext's keys.")


class ExtraSingleImageRequest(BaseModel):
    """A1111's extras tab (``ExtrasSingleImageRequest``): one picture upscaled."""

    image: str = Field(description="The picture in base64 (a data: URL prefix is fine).")
    resize_mode: int = Field(0, description="0: by upscaling_resize (1, to a size: not here).")
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(0, description="Face restoration: not on this server.")
    codeformer_visibility: float = Field(0, description="Face restoration: not on this server.")
    codeformer_weight: float = 0
    upscaling_resize: float = Field(2, description="How many times larger each side.")
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True
    upscaler_1: str = Field("None", description="GET /sdapi/v1/upscalers; None: Lanczos.")
    upscaler_2: str = Field("None", description="Blended in: not on this server.")
    extras_upscaler_2_visibility: float = 0
    upscale_first: bool = False


class ExtraSingleImageAnswer(BaseModel):
    html_info: str = Field(description="What was done, as A1111's extras tab says it.")
    image: str = Field(description="The upscaled picture, base64.")
