//! Binary requests to the blob endpoints, with upload progress
//! (XMLHttpRequest: `fetch` cannot report upload progress).

use js_sys::{ArrayBuffer, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ProgressEvent, XmlHttpRequest, XmlHttpRequestResponseType};

use crate::api::ApiError;

/// Sends `body` and returns the response body, or the server's message.
/// `on_progress` hears the fraction of the body sent so far.
pub async fn send(
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
    on_progress: Option<Box<dyn Fn(f64)>>,
) -> Result<Vec<u8>, String> {
    let unreachable = |_| "The server could not be reached. Check your connection and try again.".to_string();
    let xhr = XmlHttpRequest::new().map_err(unreachable)?;
    xhr.open_with_async(method, url, true).map_err(unreachable)?;
    xhr.set_response_type(XmlHttpRequestResponseType::Arraybuffer);
    xhr.set_request_header("content-type", content_type).map_err(unreachable)?;
    let done = Promise::new(&mut |resolve, reject| {
        xhr.set_onload(Some(&resolve));
        xhr.set_onerror(Some(&reject));
        xhr.set_onabort(Some(&reject));
    });
    // Lives until the request ends (dropped after the await below).
    let progress = on_progress.map(|f| {
        Closure::<dyn Fn(ProgressEvent)>::new(move |e: ProgressEvent| {
            if e.length_computable() && e.total() > 0.0 {
                f(e.loaded() / e.total());
            }
        })
    });
    if let (Some(closure), Ok(upload)) = (&progress, xhr.upload()) {
        upload.set_onprogress(Some(closure.as_ref().unchecked_ref()));
    }
    xhr.send_with_opt_u8_array(Some(body)).map_err(unreachable)?;
    JsFuture::from(done).await.map_err(unreachable)?;
    drop(progress);
    let status = xhr.status().map_err(unreachable)?;
    let bytes = match xhr.response().ok().and_then(|r| r.dyn_into::<ArrayBuffer>().ok()) {
        Some(buffer) => Uint8Array::new(&buffer).to_vec(),
        None => Vec::new(),
    };
    if (200..300).contains(&status) {
        return Ok(bytes);
    }
    Err(match serde_json::from_slice::<ApiError>(&bytes) {
        Ok(e) => e.to_string(),
        Err(_) => format!("The server answered {status}."),
    })
}
