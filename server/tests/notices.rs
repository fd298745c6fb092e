//! The live notice stream belongs to a session: it ends when the session
//! does, not only when the server stops.

mod common;

use std::time::{Duration, Instant};

use chartkey_core::role::Role;
use common::*;

/// Reads the stream until it ends; panics if it is still open after `limit`.
async fn ends_within(mut stream: reqwest::Response, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let left = limit.checked_sub(started.elapsed()).expect("the stream is still open");
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return started.elapsed(),
            Err(_) => panic!("the notice stream is still open {limit:?} after its session ended"),
        }
    }
}

async fn open_stream(client: &Client) -> reqwest::Response {
    let stream = client.http.get(format!("{}/api/notices/stream", client.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    stream
}

#[tokio::test]
async fn the_notice_stream_ends_with_its_session() {
    let server = TestServer::start_with(|c| c.clinician_idle_lock = Duration::from_secs(3)).await;

    // Signing out.
    let patient = sign_up(&server, "Stream Patient", Role::Patient).await;
    let stream = open_stream(&patient.client).await;
    patient.client.api(fns::Logout {}).await.unwrap();
    let took = ends_within(stream, Duration::from_secs(6)).await;
    eprintln!("stream ended {took:?} after sign-out");

    // A clinician's idle lock: the stream's own checks are not activity.
    let clinician = sign_up(&server, "Dr Idle", Role::Clinician).await;
    let stream = open_stream(&clinician.client).await;
    ends_within(stream, Duration::from_secs(9)).await;
    assert_eq!(clinician.client.api(fns::Me {}).await, Err(ApiError::Unauthorized), "the session is locked");

    // The passkey it signed in with is removed from another session.
    let owner = sign_up(&server, "Two Keys", Role::Patient).await;
    let (added, mut laptop) = add_passkey(&server, &owner, &owner.keys).await;
    added.unwrap();
    let other = server.client();
    sign_in(&server, &other, &mut laptop).await.unwrap();
    let stream = open_stream(&other).await;
    let laptop_id = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        laptop.credential_id.as_ref().unwrap(),
    );
    remove_passkey(&owner, &laptop_id, &owner.keys).await.unwrap();
    ends_within(stream, Duration::from_secs(6)).await;
    server.stop().await;
}
