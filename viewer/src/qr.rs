//! Reading a QR code from a camera frame (Chromium on Linux has no
//! BarcodeDetector): rqrr on the frame's brightness.

/// The text of the first readable QR code in a `width` × `height` image,
/// `luma(x, y)` giving each pixel's brightness (0 black, 255 white).
pub fn decode(width: usize, height: usize, luma: impl FnMut(usize, usize) -> u8) -> Option<String> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, luma);
    image.detect_grids().into_iter().find_map(|grid| grid.decode().ok().map(|(_, text)| text))
}

/// A pixel's brightness from its red, green and blue (ITU-R BT.601).
pub fn brightness(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrcode::{Color, EcLevel, QrCode};

    /// `text` as a QR code, `scale` pixels a module, with a 4-module quiet
    /// zone, on a `pad`-pixel grey border (as a camera might see it).
    fn picture(text: &str, scale: usize, pad: usize) -> (usize, Vec<u8>) {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
        let modules = code.width();
        let colors = code.to_colors();
        let side = (modules + 8) * scale + 2 * pad;
        let mut pixels = vec![128u8; side * side];
        for y in 0..side {
            for x in 0..side {
                let inside = |v: usize| v >= pad && v < side - pad;
                if !(inside(x) && inside(y)) {
                    continue;
                }
                let (mx, my) = (((x - pad) / scale) as isize - 4, ((y - pad) / scale) as isize - 4);
                let dark = (0..modules as isize).contains(&mx)
                    && (0..modules as isize).contains(&my)
                    && colors[my as usize * modules + mx as usize] == Color::Dark;
                pixels[y * side + x] = if dark { 20 } else { 235 };
            }
        }
        (side, pixels)
    }

    #[test]
    fn a_link_in_a_qr_code_is_read_back_exactly() {
        let link = format!("http://127.0.0.1:8080/view#shlink:/{}", "eyJ1cmwiOiJodHRwczovL2V4YW1wbGUifQ".repeat(6));
        let (side, pixels) = picture(&link, 4, 30);
        assert_eq!(decode(side, side, |x, y| pixels[y * side + x]).as_deref(), Some(link.as_str()));
    }

    #[test]
    fn a_frame_without_a_code_reads_nothing() {
        assert_eq!(decode(64, 48, |x, y| ((x * 7 + y * 13) % 256) as u8), None);
        assert_eq!(decode(0, 0, |_, _| 0), None);
        // Half a code is not a code.
        let (side, pixels) = picture("shlink:/abc", 4, 0);
        assert_eq!(decode(side / 2, side, |x, y| pixels[y * side + x]), None);
    }

    #[test]
    fn brightness_weighs_green_most() {
        assert_eq!(brightness(255, 255, 255), 255);
        assert_eq!(brightness(0, 0, 0), 0);
        assert!(brightness(0, 255, 0) > brightness(255, 0, 0) && brightness(255, 0, 0) > brightness(0, 0, 255));
    }
}
