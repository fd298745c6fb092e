//! Scanning a link's QR code with the camera: frames drawn to a canvas
//! and read with rqrr four times a second (Chromium on Linux has no
//! BarcodeDetector). The camera stops as soon as a link is read, or when
//! the reader stops it.

use std::cell::RefCell;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlElement, HtmlVideoElement, MediaStream};

use crate::dom::{element, on, say, window};
use crate::qr;

/// Frames are read at this width at most: a phone camera's usual 1280×720,
/// where a card held at arm's length still has modules of a few pixels.
const FRAME_WIDTH: u32 = 1280;

thread_local! {
    static STREAM: RefCell<Option<MediaStream>> = const { RefCell::new(None) };
}

/// Shows "Scan a QR code" where the browser has a camera API; a link read
/// goes to `found`.
pub fn offer(found: fn(&str)) {
    if window().navigator().media_devices().is_err() {
        return;
    }
    element::<HtmlElement>("scan-start").set_hidden(false);
    on("scan-start", "click", move |_| spawn_local(scan(found)));
    on("scan-stop", "click", |_| stop());
}

async fn scan(found: fn(&str)) {
    let status = element::<HtmlElement>("scan-status");
    let Some(stream) = camera().await else {
        return say(
            "link-error",
            "The camera is not available (no camera, or permission was not given). Paste the link instead.",
        );
    };
    say("link-error", "");
    element::<HtmlElement>("scanner").set_hidden(false);
    element::<HtmlElement>("link-form").set_hidden(true);
    status.set_text_content(Some("Hold the QR code in front of the camera."));
    let video = element::<HtmlVideoElement>("scan-video");
    video.set_src_object(Some(&stream));
    let _ = video.play();
    STREAM.with(|s| *s.borrow_mut() = Some(stream));
    let Some((canvas, context)) = canvas() else { return stop() };
    while STREAM.with(|s| s.borrow().is_some()) {
        sleep(250).await;
        let (w, h) = (video.video_width(), video.video_height());
        if w == 0 || h == 0 {
            continue;
        }
        let width = w.min(FRAME_WIDTH);
        let height = h * width / w;
        canvas.set_width(width);
        canvas.set_height(height);
        let (fw, fh) = (f64::from(width), f64::from(height));
        if context.draw_image_with_html_video_element_and_dw_and_dh(&video, 0.0, 0.0, fw, fh).is_err() {
            continue;
        }
        let Ok(frame) = context.get_image_data(0.0, 0.0, fw, fh) else { continue };
        let rgba = frame.data();
        let luma: Vec<u8> = rgba.chunks_exact(4).map(|p| qr::brightness(p[0], p[1], p[2])).collect();
        let read = qr::read(width as usize, height as usize, &luma);
        match read {
            Some(text) if text.contains("shlink:/") => {
                stop();
                return found(&text);
            }
            Some(_) => status.set_text_content(Some("That QR code is not a SMART Health Link. Try the link's code.")),
            None => {}
        }
    }
}

/// The back camera where there is one.
async fn camera() -> Option<MediaStream> {
    let devices = window().navigator().media_devices().ok()?;
    let constraints = web_sys::MediaStreamConstraints::new();
    let video = js_sys::Object::new();
    js_sys::Reflect::set(&video, &"facingMode".into(), &"environment".into()).ok()?;
    constraints.set_video(&video);
    let promise = devices.get_user_media_with_constraints(&constraints).ok()?;
    JsFuture::from(promise).await.ok().map(JsCast::unchecked_into)
}

fn canvas() -> Option<(HtmlCanvasElement, CanvasRenderingContext2d)> {
    let canvas: HtmlCanvasElement = window().document()?.create_element("canvas").ok()?.dyn_into().ok()?;
    let context = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    Some((canvas, context))
}

/// Stops the camera and goes back to the link form.
fn stop() {
    if let Some(stream) = STREAM.with(|s| s.borrow_mut().take()) {
        for track in stream.get_tracks().iter() {
            track.unchecked_into::<web_sys::MediaStreamTrack>().stop();
        }
    }
    element::<HtmlVideoElement>("scan-video").set_src_object(None);
    element::<HtmlElement>("scanner").set_hidden(true);
    element::<HtmlElement>("link-form").set_hidden(false);
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
