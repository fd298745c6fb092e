//! The built app compressed ahead of time: each text asset (wasm, js,
//! css, html, svg, json) gets a brotli (quality 11) and a gzip (level 9)
//! form beside it, which the server sends as they are to browsers that
//! accept them (tower-http's `ServeDir::precompressed_*`). Compressing once
//! at build time affords the slowest, smallest settings, which a server
//! could not spend on every request.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::Result;

/// Files worth compressing, by extension.
const COMPRESSIBLE: &[&str] = &["wasm", "js", "css", "html", "svg", "json", "txt", "webmanifest"];

/// What `precompress` wrote: the bytes of the files it read and of their
/// brotli and gzip forms.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub files: usize,
    pub raw: usize,
    pub brotli: usize,
    pub gzip: usize,
}

/// Writes `name.br` and `name.gz` beside every compressible file under
/// `dir` (replacing older ones); a form that would not be smaller is not
/// written, so the server sends the file itself.
pub fn precompress(dir: &Path) -> Result<Written> {
    let mut written = Written::default();
    precompress_into(dir, &mut written)?;
    Ok(written)
}

fn precompress_into(dir: &Path, written: &mut Written) -> Result {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            precompress_into(&path, written)?;
            continue;
        }
        let compressible = path.extension().and_then(|e| e.to_str()).is_some_and(|e| COMPRESSIBLE.contains(&e));
        if !compressible {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let forms = [("br", brotli(&bytes)), ("gz", gzip(&bytes))];
        for (ext, compressed) in &forms {
            let mut name = path.clone().into_os_string();
            name.push(format!(".{ext}"));
            if compressed.len() < bytes.len() {
                std::fs::write(&name, compressed).map_err(|e| format!("writing {}: {e}", name.display()))?;
            } else {
                let _ = std::fs::remove_file(&name);
            }
        }
        written.files += 1;
        written.raw += bytes.len();
        written.brotli += forms[0].1.len().min(bytes.len());
        written.gzip += forms[1].1.len().min(bytes.len());
    }
    Ok(())
}

pub fn brotli(bytes: &[u8]) -> Vec<u8> {
    let params = ::brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
    let mut out = Vec::new();
    ::brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("in-memory brotli");
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("in-memory gzip");
    encoder.finish().expect("in-memory gzip")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both forms decompress to the file; an incompressible file gets none.
    #[test]
    fn writes_both_forms_that_decompress_to_the_file() {
        let dir = tempdir();
        let text = "body { color: black; }\n".repeat(200);
        std::fs::create_dir(dir.join("nested")).unwrap();
        std::fs::write(dir.join("nested/app.css"), &text).unwrap();
        // xorshift64: bytes no compressor shortens.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        std::fs::write(dir.join("noise.wasm"), &noise).unwrap();
        std::fs::write(dir.join("photo.png"), &text).unwrap();

        let written = precompress(&dir).unwrap();
        assert_eq!((written.files, written.raw), (2, text.len() + noise.len()));

        let br = std::fs::read(dir.join("nested/app.css.br")).unwrap();
        let mut unbrotli = Vec::new();
        ::brotli::BrotliDecompress(&mut &br[..], &mut unbrotli).unwrap();
        assert_eq!(unbrotli, text.as_bytes());
        let gz = std::fs::read(dir.join("nested/app.css.gz")).unwrap();
        let mut ungzip = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut ungzip).unwrap();
        assert_eq!(ungzip, text.as_bytes());
        assert!(br.len() < gz.len() && gz.len() < text.len() / 10, "{} {} {}", br.len(), gz.len(), text.len());

        assert!(!dir.join("noise.wasm.br").exists() && !dir.join("noise.wasm.gz").exists());
        assert!(!dir.join("photo.png.br").exists(), "not a text asset");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-precompress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
