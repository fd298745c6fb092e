//! The key worker's entry point (Trunk builds it as a `worker` module; see
//! index.html). Native builds have nothing to run.

fn main() {
    #[cfg(target_arch = "wasm32")]
    chartkey_kdf_worker::start();
}
