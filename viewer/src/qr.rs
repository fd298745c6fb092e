//! Reading a QR code from a camera frame (Chromium on Linux has no
//! BarcodeDetector): rqrr on the frame's brightness.

/// The text of the first readable QR code in a `width` × `height` image,
/// `luma(x, y)` giving each pixel's brightness (0 black, 255 white).
pub fn decode(width: usize, height: usize, luma: impl FnMut(usize, usize) -> u8) -> Option<String> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, luma);
    image.detect_grids().into_iter().find_map(|grid| grid.decode().ok().map(|(_, text)| text))
}

/// The text of the first readable QR code in a frame of brightness values
/// (`width` × `height`, row by row), read as it is and, failing that, at
/// three quarters and half its size: the decoder misses some codes whose
/// modules fall at awkward fractions of a pixel, and a smaller copy moves
/// them elsewhere.
pub fn read(width: usize, height: usize, luma: &[u8]) -> Option<String> {
    if luma.len() < width * height {
        return None;
    }
    [(1, 1), (3, 4), (2, 3), (1, 2)].into_iter().find_map(|(num, den)| {
        let (w, h) = (width * num / den, height * num / den);
        decode(w, h, |x, y| {
            // The average of the source pixels this pixel covers.
            let (x0, x1) = (x * den / num, ((x + 1) * den).div_ceil(num).min(width));
            let (y0, y1) = (y * den / num, ((y + 1) * den).div_ceil(num).min(height));
            let mut sum = 0u32;
            for sy in y0..y1 {
                sum += luma[sy * width + x0..sy * width + x1].iter().map(|&v| u32::from(v)).sum::<u32>();
            }
            (sum / ((x1 - x0) * (y1 - y0)).max(1) as u32) as u8
        })
    })
}

/// A pixel's brightness from its red, green and blue (ITU-R BT.601).
pub fn brightness(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrcode::{Color, EcLevel, QrCode};

    /// `text` as a QR code, `px` pixels a module (anti-aliased, as a
    /// camera or a scaled screen shows it), with a 4-module quiet zone, on
    /// a `pad`-pixel grey border.
    fn picture(text: &str, px: f64, pad: usize) -> (usize, Vec<u8>) {
        const SAMPLES: usize = 4;
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
        let modules = code.width();
        let colors = code.to_colors();
        let inner = ((modules + 8) as f64 * px).ceil() as usize;
        let side = inner + 2 * pad;
        let mut pixels = vec![128u8; side * side];
        for y in pad..pad + inner {
            for x in pad..pad + inner {
                let mut dark = 0;
                for (sx, sy) in (0..SAMPLES * SAMPLES).map(|i| (i % SAMPLES, i / SAMPLES)) {
                    let at = |v: usize, s: usize| ((v - pad) as f64 + s as f64 / SAMPLES as f64) / px - 4.0;
                    let (mx, my) = (at(x, sx), at(y, sy));
                    let inside = (0.0..modules as f64).contains(&mx) && (0.0..modules as f64).contains(&my);
                    if inside && colors[my as usize * modules + mx as usize] == Color::Dark {
                        dark += 1;
                    }
                }
                pixels[y * side + x] = (235 - dark * 215 / (SAMPLES * SAMPLES)) as u8;
            }
        }
        (side, pixels)
    }

    #[test]
    fn a_link_in_a_qr_code_is_read_back_exactly() {
        let link = format!("http://127.0.0.1:8080/view#shlink:/{}", "eyJ1cmwiOiJodHRwczovL2V4YW1wbGUifQ".repeat(6));
        let (side, pixels) = picture(&link, 4.0, 30);
        assert_eq!(decode(side, side, |x, y| pixels[y * side + x]).as_deref(), Some(link.as_str()));
    }

    #[test]
    fn a_dense_link_is_read_at_the_module_sizes_a_camera_gives() {
        // A link as the portal shows it (version 12, 65 modules a side).
        let link = format!("http://localhost:40637/view#shlink:/{}", "eyJ1cmwiOiJodHRwczovL2V4YW1wbGUifQ".repeat(7));
        let mut missed = Vec::new();
        for px in [3.0, 3.3, 3.8, 4.0, 4.2, 4.5, 4.8, 5.0, 5.5, 6.0, 6.6, 7.3] {
            let (side, pixels) = picture(&link, px, 20);
            if read(side, side, &pixels).as_deref() != Some(link.as_str()) {
                missed.push(px);
            }
        }
        // The decoder alone misses about a third of these sizes.
        assert_eq!(missed, Vec::<f64>::new());
        assert_eq!(read(10, 10, &[0; 50]), None, "a frame shorter than its size is no frame");
    }

    #[test]
    fn a_frame_without_a_code_reads_nothing() {
        assert_eq!(decode(64, 48, |x, y| ((x * 7 + y * 13) % 256) as u8), None);
        assert_eq!(decode(0, 0, |_, _| 0), None);
        // Half a code is not a code.
        let (side, pixels) = picture("shlink:/abc", 4.0, 0);
        assert_eq!(decode(side / 2, side, |x, y| pixels[y * side + x]), None);
    }

    #[test]
    fn brightness_weighs_green_most() {
        assert_eq!(brightness(255, 255, 255), 255);
        assert_eq!(brightness(0, 0, 0), 0);
        assert!(brightness(0, 255, 0) > brightness(255, 0, 0) && brightness(255, 0, 0) > brightness(0, 0, 255));
    }
}
