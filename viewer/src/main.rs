//! The viewer's entry point (Trunk builds it as a `worker` module and
//! view.html starts it; see index.html). Native builds have nothing to run.

fn main() {
    #[cfg(target_arch = "wasm32")]
    chartkey_viewer::start();
}
