"""Graphs run end to end on the demo model: the real queue, worker, engine and history; each
checked by what it must do, read off its pictures by the demo world's analyzer."""

import io
import threading

import numpy as np
import pytest
from PIL import Image

from sfumato.demo.analyze import analyze
from sfumato.engine.request import GenerationRequest
from sfumato.jobs.submit import submit
from sfumato.metadata.read import read_info_bytes, read_texts
from sfumato.store.tables import Image as ImageRow
from sfumato.workflows.validate import GraphInvalid
from tests.workflows.conftest import DEMO, PROMPT, default_graph


def test_comfyuis_own_example_graph_draws_the_prompt_into_the_history(runner):
    job = runner.run(default_graph(), extra_data={"extra_pnginfo": {"workflow": {"nodes": []}}})
    assert job.status == "succeeded", job.error_message
    (picture,) = runner.pictures(job)
    assert picture.size == (64, 64)
    drawn = analyze(picture)
    assert (drawn.colour, drawn.background) == ("red", "blue")
    assert job.workflow["outputs"]["9"]["images"][0]["type"] == "output"
    with runner.studio.db.session() as session:
        row = session.query(ImageRow).filter_by(job_id=job.id).one()
        assert (row.prompt, row.model_name, row.settings["seed"]) == (PROMPT, DEMO, 5)
        content = runner.studio.files.get(row.file_key)
    # embedded as ComfyUI embeds it, and read back as a ComfyUI picture
    texts = read_texts(content)
    assert set(texts) >= {"prompt", "workflow"}
    info = read_info_bytes(content)
    assert (info.tool, info.prompt, info.seed, info.steps) == ("ComfyUI", PROMPT, 5, 8)


def test_the_same_graph_and_seed_give_the_same_pixels_and_another_seed_others(runner):
    first = np.asarray(runner.pictures(runner.run(default_graph()))[0])
    again = np.asarray(runner.pictures(runner.run(default_graph()))[0])
    other = np.asarray(runner.pictures(runner.run(default_graph(**{"3.seed": 6})))[0])
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_graph_gives_the_pixels_of_the_same_settings_through_v1_generations(runner):
    graph = runner.pictures(runner.run(default_graph()))[0]
    request = GenerationRequest(
        PROMPT, negative_prompt="bad hands", width=64, height=64, steps=8, guidance=8.0,
        sampler="euler", seed=5, clip_skip=1,
    )  # fmt: skip
    job = submit(runner.studio, runner.user, request, model=DEMO)
    done = runner.wait(job.id)
    assert done.status == "succeeded", done.error_message
    plain = runner.pictures(done)[0]
    assert np.array_equal(np.asarray(graph.convert("RGB")), np.asarray(plain.convert("RGB")))


def test_nodes_whose_inputs_did_not_change_are_not_run_again(runner):
    runner.run(default_graph())
    job = runner.run(default_graph(**{"3.seed": 9}), fresh=False)
    cached = next(m[1]["nodes"] for m in job.workflow["messages"] if m[0] == "execution_cached")
    # the checkpoint, the empty latent and both prompts: only the sampler and after ran again
    assert sorted(cached) == ["4", "5", "6", "7"]
    assert len(runner.pictures(job)) == 1


def _circle_picture():
    image = Image.new("RGB", (64, 64), (30, 60, 220))
    from PIL import ImageDraw

    ImageDraw.Draw(image).ellipse((20, 20, 44, 44), fill=(220, 30, 30))
    return image


def _img2img_graph(name: str, denoise: float) -> dict:
    graph = default_graph(**{"3.denoise": denoise})
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": name}}
    graph["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    graph["3"]["inputs"]["latent_image"] = ["11", 0]
    del graph["5"]
    return graph


def test_image_to_image_keeps_the_pictures_scene(runner):
    name = runner.upload(_circle_picture(), "circle.png")
    job = runner.run(_img2img_graph(name, 0.5))
    assert job.status == "succeeded", job.error_message
    drawn = analyze(runner.pictures(job)[0])
    assert (drawn.colour, drawn.background, drawn.shape) == ("red", "blue", "circle")


def test_inpainting_repaints_the_mask_and_keeps_the_rest(runner):
    original = _circle_picture()
    name = runner.upload(original, "circle.png")
    mask = Image.new("RGB", (64, 64), "black")
    mask.paste("white", (32, 0, 64, 64))  # repaint the right half
    mask_name = runner.upload(mask, "mask.png")
    graph = default_graph(**{"6.text": "a green square on a white background"})
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": name}}
    graph["12"] = {"class_type": "LoadImageMask", "inputs": {"image": mask_name, "channel": "red"}}
    graph["11"] = {
        "class_type": "VAEEncodeForInpaint",
        "inputs": {"pixels": ["10", 0], "vae": ["4", 2], "mask": ["12", 0], "grow_mask_by": 0},
    }
    graph["3"]["inputs"]["latent_image"] = ["11", 0]
    del graph["5"]
    job = runner.run(graph)
    assert job.status == "succeeded", job.error_message
    out = np.asarray(runner.pictures(job)[0].convert("RGB"), dtype=int)
    before = np.asarray(original, dtype=int)
    kept = np.abs(out[:, :24] - before[:, :24]).mean()  # (away from the seam)
    redrawn = np.abs(out[:, 40:] - before[:, 40:]).mean()
    assert kept < 12, kept  # through the VAE and back: close, not bit-equal
    assert redrawn > 3 * kept, (kept, redrawn)


def test_a_lora_changes_the_picture_as_it_was_trained_to(runner):
    graph = default_graph()
    graph["10"] = {
        "class_type": "LoraLoader",
        "inputs": {
            "model": ["4", 0], "clip": ["4", 1], "lora_name": "demo-white-background.safetensors",
            "strength_model": 1.0, "strength_clip": 1.0,
        },
    }  # fmt: skip
    graph["3"]["inputs"]["model"] = ["10", 0]
    graph["6"]["inputs"]["clip"] = graph["7"]["inputs"]["clip"] = ["10", 1]
    graph["6"]["inputs"]["text"] = "a red circle"
    job = runner.run(graph)
    assert job.status == "succeeded", job.error_message
    assert analyze(runner.pictures(job)[0]).background == "white"
    plain = runner.pictures(runner.run(default_graph(**{"6.text": "a red circle"})))[0]
    assert analyze(plain).background != "white"


def test_a_two_pass_graph_samples_again_at_twice_the_size(runner):
    graph = default_graph()
    graph["10"] = {
        "class_type": "LatentUpscaleBy",
        "inputs": {"samples": ["3", 0], "upscale_method": "nearest-exact", "scale_by": 2.0},
    }
    graph["11"] = {
        "class_type": "KSampler",
        "inputs": dict(graph["3"]["inputs"], latent_image=["10", 0], denoise=0.5, steps=6),
    }
    graph["8"]["inputs"]["samples"] = ["11", 0]
    job = runner.run(graph)
    assert job.status == "succeeded", job.error_message
    assert job.total == 8 + 6  # both passes' steps, the second's as run
    (picture,) = runner.pictures(job)
    assert picture.size == (128, 128)
    assert analyze(picture.resize((64, 64), Image.Resampling.LANCZOS)).colour == "red"


def test_a_batch_and_a_preview_keep_only_the_saved_pictures(runner):
    graph = default_graph(**{"5.batch_size": 2})
    graph["10"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    job = runner.run(graph)
    assert job.status == "succeeded", job.error_message
    assert len(runner.pictures(job)) == 2  # the preview is not in the history
    preview = job.workflow["outputs"]["10"]["images"]
    assert [p["type"] for p in preview] == ["temp", "temp"]
    assert all(runner.studio.files.exists(f"temp/{runner.user.id}/{p['filename']}")
               for p in preview)  # fmt: skip


def test_a_cancelled_graph_keeps_no_picture(runner):
    graph = default_graph(**{"3.steps": 60})
    started = threading.Event()
    job = runner.submit(graph)

    def cancel_when_running():
        import time

        for _ in range(400):
            if runner.studio.dispatch.cancel(job.id):
                started.set()
                return
            time.sleep(0.01)

    threading.Thread(target=cancel_when_running).start()
    done = runner.wait(job.id)
    assert started.is_set()
    assert done.status == "cancelled"
    assert runner.pictures(done) == []
    events = [m[0] for m in done.workflow.get("messages", [])]
    assert "execution_success" not in events


# the links of ComfyUI's default graph in its UI's workflow format (the frontend's
# defaultGraph.ts): [link id, from node, from slot, to node, to slot, type]
UI_LINKS = [
    [1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"],
    [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 7, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"],
    [7, 3, 0, 8, 0, "LATENT"], [8, 4, 2, 8, 1, "VAE"], [9, 8, 0, 9, 0, "IMAGE"],
]  # fmt: skip


def test_a_picture_with_the_uis_workflow_is_read_back_by_sd_parsers(runner):
    import sd_parsers

    workflow = {"last_node_id": 9, "last_link_id": 9, "nodes": [], "links": UI_LINKS}
    job = runner.run(default_graph(), extra_data={"extra_pnginfo": {"workflow": workflow}})
    with runner.studio.db.session() as session:
        row = session.query(ImageRow).filter_by(job_id=job.id).one()
        content = runner.studio.files.get(row.file_key)
    parsed = sd_parsers.ParserManager().parse(Image.open(io.BytesIO(content)))
    (sampler,) = parsed.samplers
    assert [p.value for p in sampler.prompts] == [PROMPT]
    assert sampler.parameters["seed"] == 5 and sampler.model.name == DEMO


def test_a_vae_file_decodes_in_place_of_the_checkpoints(runner, tmp_path):
    """A VAE file as A1111's and ComfyUI's VAE folders hold them (the original layout, no
    prefix), its decoder made to brighten everything, so its use shows in the pixels."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    from tests.fixtures.original_layout import pipeline_to_original

    pipe = StableDiffusionPipeline.from_pretrained(
        runner.studio.models().scan().resolve(DEMO).path, safety_checker=None
    )
    prefix = "first_stage_model."
    vae = {
        k[len(prefix) :]: v for k, v in pipeline_to_original(pipe).items() if k.startswith(prefix)
    }
    vae["decoder.conv_out.bias"] = vae["decoder.conv_out.bias"] + 0.6
    folder = runner.studio.config.models_dirs[0] / "VAE"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in vae.items()}, folder / "bright.safetensors")
    graph = default_graph()
    graph["10"] = {"class_type": "VAELoader", "inputs": {"vae_name": "bright.safetensors"}}
    graph["8"]["inputs"]["vae"] = ["10", 0]
    job = runner.run(graph)
    assert job.status == "succeeded", job.error_message
    bright = np.asarray(runner.pictures(job)[0], dtype=float)
    plain = np.asarray(runner.pictures(runner.run(default_graph()))[0], dtype=float)
    assert bright.mean() > plain.mean() + 20


def test_an_advanced_sampler_hands_its_noisy_latent_to_a_second_one(runner):
    """SDXL's base-and-refiner pattern: the first sampler stops at step 5 of 8 with its noise
    left in, the second adds none and finishes; the same pixels as one sampler of 8 steps."""
    whole = runner.pictures(runner.run(default_graph()))[0]
    graph = default_graph()
    common = {k: graph["3"]["inputs"][k] for k in
              ("model", "cfg", "sampler_name", "scheduler", "positive", "negative")}  # fmt: skip
    common |= {"noise_seed": 5, "steps": 8}
    graph["3"] = {"class_type": "KSamplerAdvanced", "inputs": common | {
        "add_noise": "enable", "latent_image": ["5", 0], "start_at_step": 0, "end_at_step": 5,
        "return_with_leftover_noise": "enable"}}  # fmt: skip
    graph["11"] = {"class_type": "KSamplerAdvanced", "inputs": common | {
        "add_noise": "disable", "latent_image": ["3", 0], "start_at_step": 5,
        "end_at_step": 10000, "return_with_leftover_noise": "disable"}}  # fmt: skip
    graph["8"]["inputs"]["samples"] = ["11", 0]
    job = runner.run(graph)
    assert job.status == "succeeded", job.error_message
    assert job.total == 8
    split = runner.pictures(job)[0]
    difference = np.abs(np.asarray(split, dtype=int) - np.asarray(whole, dtype=int))
    assert difference.max() <= 2, difference.max()


def test_a_client_chosen_prompt_id_is_kept_as_written(runner):
    """ComfyUI's own websocket example sends a uuid4 as prompt_id and waits for it."""
    import uuid

    from sfumato.errors import Conflict, InvalidRequest
    from sfumato.workflows.info import history_entry, job_id

    chosen = str(uuid.uuid4())
    job = runner.run(default_graph(), prompt_id=chosen)
    assert job.id == job_id(chosen) == uuid.UUID(chosen).hex
    entry = history_entry(job)
    assert entry["prompt"][1] == chosen
    started = next(m[1] for m in job.workflow["messages"] if m[0] == "execution_start")
    assert started["prompt_id"] == chosen
    with pytest.raises(Conflict):
        runner.submit(default_graph(), prompt_id=chosen)
    with pytest.raises(InvalidRequest, match="not a UUID"):
        runner.submit(default_graph(), prompt_id="my-prompt")


def test_a_graph_failing_at_a_node_says_which_in_its_history(runner):
    """Found only when it runs: the demo model's text encoder has fewer layers than asked."""
    from sfumato.workflows.info import history_entry

    graph = default_graph()
    graph["10"] = {"class_type": "CLIPSetLastLayer",
                   "inputs": {"clip": ["4", 1], "stop_at_clip_layer": -12}}  # fmt: skip
    graph["6"]["inputs"]["clip"] = ["10", 0]
    job = runner.run(graph)
    assert job.status == "failed"
    assert "fewer layers" in job.error_message
    status = history_entry(job)["status"]
    assert status["status_str"] == "error" and not status["completed"]
    error = next(data for event, data in status["messages"] if event == "execution_error")
    assert (error["node_id"], error["node_type"]) == ("6", "CLIPTextEncode")
    assert "fewer layers" in error["exception_message"] and error["timestamp"] > 0
    assert runner.pictures(job) == []


def test_an_upscale_model_enlarges_the_decoded_picture_as_comfyuis_nodes_do(runner):
    """ComfyUI's "Load Upscale Model" and "Upscale Image (using Model)", as its own upscale
    example wires them: the model from ``upscale_models/`` by file name, the decoded picture
    into it, the result saved."""
    from tests.fixtures.upscaler_files import compact_pth

    folder = runner.studio.config.models_dirs[0] / "upscale_models"
    folder.mkdir()
    compact_pth(folder / "2x-Compact.pth")
    graph = default_graph()
    graph["10"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "2x-Compact.pth"}}
    graph["11"] = {
        "class_type": "ImageUpscaleWithModel",
        "inputs": {"upscale_model": ["10", 0], "image": ["8", 0]},
    }
    graph["9"]["inputs"]["images"] = ["11", 0]
    job = runner.run(graph)
    assert job.status == "succeeded", job.error_message
    (picture,) = runner.pictures(job)
    (plain,) = runner.pictures(runner.run(default_graph()))
    assert picture.size == (128, 128) and plain.size == (64, 64)
    back = np.asarray(picture.convert("RGB").resize((64, 64), Image.Resampling.BOX), dtype=float)
    assert np.abs(back - np.asarray(plain.convert("RGB"), dtype=float)).mean() < 8
    # what a client reads to fill its menu, and a name that is not installed
    from sfumato.workflows.info import object_info

    info = object_info(runner.studio, runner.user.id, "UpscaleModelLoader")
    assert info["UpscaleModelLoader"]["input"]["required"]["model_name"][0] == ["2x-Compact.pth"]
    graph["10"]["inputs"]["model_name"] = "4x-UltraSharp.pth"
    with pytest.raises(GraphInvalid) as refused:
        runner.run(graph)
    assert "4x-UltraSharp.pth" in str(refused.value.body)
