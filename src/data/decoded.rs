//! Decoding image files into RGB8 pixels, with a guard against hostile headers.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, ImageReader, Limits};
use rayon::prelude::*;

use crate::check::recipe::CorruptPolicy;
use crate::diagnostics::{Code, Diagnostic};

/// Largest accepted side: a header claiming more is treated as corrupt rather than allocated.
pub use crate::limits::MAX_IMAGE_SIDE;

/// An image as interleaved RGB8, row by row (`pixels.len() == width * height * 3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// The images that decoded, their labels (same order as the input), and the files left out.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub images: Vec<DecodedImage>,
    pub labels: Vec<usize>,
    /// Files skipped under `corrupt skip`, with the decoder's reason, in input order.
    pub skipped: Vec<(PathBuf, String)>,
}

impl DecodedImage {
    /// Decode one file; a file that cannot be decoded is TL4003 naming it and the reason.
    pub fn from_file(path: &Path) -> Result<DecodedImage, Diagnostic> {
        decode_file(path).map_err(|reason| corrupt_image(path, &reason))
    }

    /// Decode one file; the error is the reason alone, for a caller that lists files itself.
    pub fn read_file(path: &Path) -> Result<DecodedImage, String> {
        decode_file(path)
    }

    /// Decode PNG or JPEG bytes; the error is the reason, in words.
    pub fn from_bytes(bytes: &[u8], format_hint: Option<ImageFormat>) -> Result<DecodedImage, String> {
        if bytes.is_empty() {
            return Err("the file is empty (0 bytes)".to_string());
        }
        let reader = || {
            let mut reader = ImageReader::new(Cursor::new(bytes));
            if let Some(format) = format_hint {
                reader.set_format(format);
            }
            // The content decides when recognisable, the extension otherwise.
            reader.with_guessed_format().map_err(|error| error.to_string())
        };
        // Read the header alone first so that a claimed 20000x20000 never reaches an allocation.
        let (width, height) = reader()?.into_dimensions().map_err(|error| error.to_string())?;
        if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
            return Err(format!(
                "its header claims {width}x{height} pixels, more than the {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} limit"
            ));
        }
        if width == 0 || height == 0 {
            return Err(format!("its header claims {width}x{height} pixels"));
        }
        let mut reader = reader()?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        reader.limits(limits);
        // into_rgb8 repeats a grey channel three times and drops alpha.
        let rgb = reader.decode().map_err(|error| error.to_string())?.into_rgb8();
        Ok(DecodedImage { width: rgb.width(), height: rgb.height(), pixels: rgb.into_raw() })
    }

    /// The pixel at (x, y) as [r, g, b]; `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let start = (y as usize * self.width as usize + x as usize) * 3;
        self.pixels.get(start..start + 3).map(|p| [p[0], p[1], p[2]])
    }

    /// Whether the buffer length matches the dimensions (a hand-built image may not).
    /// Replace every pixel by its grey value, in all three channels: the ITU-R 601-2 luma that
    /// PIL documents for `convert("L")`, (R·299 + G·587 + B·114) / 1000, rounded.
    pub fn make_grey(&mut self) {
        for pixel in self.pixels.chunks_exact_mut(3) {
            let luma = (u32::from(pixel[0]) * 299 + u32::from(pixel[1]) * 587 + u32::from(pixel[2]) * 114 + 500) / 1000;
            pixel.fill(luma.min(255) as u8);
        }
    }

    pub fn is_consistent(&self) -> bool {
        self.width > 0
            && self.height > 0
            && self.pixels.len() == self.width as usize * self.height as usize * 3
    }
}

fn decode_file(path: &Path) -> Result<DecodedImage, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("cannot be read: {error}"))?;
    let hint = path.extension().and_then(ImageFormat::from_extension);
    DecodedImage::from_bytes(&bytes, hint)
}

fn corrupt_image(path: &Path, reason: &str) -> Diagnostic {
    Diagnostic::new(Code::CorruptImage, format!("image `{}` cannot be decoded: {reason}", path.display()))
        .with_help("replace or delete the file, or write `corrupt skip` in the recipe's data block to leave unreadable images out")
}

/// Several bad files, each on its own line with its reason.
fn corrupt_images(bad: &[(&PathBuf, &String)]) -> Diagnostic {
    let lines: Vec<String> = bad.iter().map(|(path, reason)| format!("  {}: {reason}", path.display())).collect();
    Diagnostic::new(Code::CorruptImage, format!("{} images cannot be decoded:\n{}", bad.len(), lines.join("\n")))
        .with_help("replace or delete these files, or write `corrupt skip` in the recipe's data block to leave unreadable images out")
}

/// Decode every item in parallel; output order follows `items`. Under `Fail` every bad file is
/// named, in path order, in one diagnostic: a user deletes them all at once instead of meeting
/// them one run at a time.
pub fn decode_all(items: &[(PathBuf, usize)], policy: CorruptPolicy) -> Result<Decoded, Diagnostic> {
    let results: Vec<Result<DecodedImage, String>> =
        items.par_iter().map(|(path, _)| decode_file(path)).collect();
    if policy == CorruptPolicy::Fail {
        let mut bad: Vec<(&PathBuf, &String)> = items
            .iter()
            .zip(&results)
            .filter_map(|((path, _), result)| result.as_ref().err().map(|reason| (path, reason)))
            .collect();
        bad.sort();
        match bad.as_slice() {
            [] => {}
            [(path, reason)] => return Err(corrupt_image(path, reason)),
            many => return Err(corrupt_images(many)),
        }
    }
    let mut decoded = Decoded::default();
    for ((path, label), result) in items.iter().zip(results) {
        match result {
            Ok(image) => {
                decoded.images.push(image);
                decoded.labels.push(*label);
            }
            Err(reason) => decoded.skipped.push((path.clone(), reason)),
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ExtendedColorType, ImageEncoder, codecs::png::PngEncoder};
    use std::fs;

    fn png_bytes(width: u32, height: u32, color: ExtendedColorType, pixels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        PngEncoder::new(&mut bytes).write_image(pixels, width, height, color).unwrap();
        bytes
    }

    /// CRC-32 (IEEE), bit by bit: enough to re-sign a patched PNG chunk.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A valid 1x1 PNG whose IHDR claims `width` x `height`, with a correct chunk CRC.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png_bytes(1, 1, ExtendedColorType::Rgb8, &[1, 2, 3]);
        // Signature (8) + length (4) + "IHDR" (4), then width and height, then 5 more fields.
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn decodes_rgb_and_expands_grey() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = dir.path().join("rgb.png");
        fs::write(&rgb, png_bytes(2, 1, ExtendedColorType::Rgb8, &[10, 20, 30, 40, 50, 60])).unwrap();
        let image = DecodedImage::from_file(&rgb).unwrap();
        assert_eq!((image.width, image.height), (2, 1));
        assert_eq!(image.pixels, vec![10, 20, 30, 40, 50, 60]);

        let grey = dir.path().join("grey.png");
        fs::write(&grey, png_bytes(1, 2, ExtendedColorType::L8, &[7, 200])).unwrap();
        let image = DecodedImage::from_file(&grey).unwrap();
        assert_eq!(image.pixels, vec![7, 7, 7, 200, 200, 200]);
        assert_eq!(image.pixel(0, 1), Some([200, 200, 200]));
        assert_eq!(image.pixel(1, 0), None);
    }

    #[test]
    fn patched_header_is_well_formed() {
        // The helper itself: an unpatched size keeps decoding, so the CRC is right.
        let same = png_claiming(1, 1);
        assert_eq!(DecodedImage::from_bytes(&same, None).unwrap().pixels, vec![1, 2, 3]);
    }

    fn corrupt_reason(dir: &Path, name: &str, bytes: &[u8]) -> Diagnostic {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        let error = DecodedImage::from_file(&path).unwrap_err();
        assert_eq!(error.code, Code::CorruptImage);
        assert!(error.message.contains(name), "{}", error.message);
        error
    }

    #[test]
    fn bad_files_are_tl4003_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = corrupt_reason(dir.path(), "empty.png", b"");
        assert!(empty.message.contains("empty"), "{}", empty.message);

        let good = png_bytes(8, 8, ExtendedColorType::Rgb8, &[128; 8 * 8 * 3]);
        corrupt_reason(dir.path(), "truncated.png", &good[..good.len() / 2]);
        corrupt_reason(dir.path(), "text.png", b"this is not an image, just some text\n");
        corrupt_reason(dir.path(), "truncated.jpg", &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F']);

        let huge = corrupt_reason(dir.path(), "huge.png", &png_claiming(20000, 20000));
        assert!(huge.message.contains("20000x20000"), "{}", huge.message);
    }

    #[test]
    fn a_wrong_extension_and_a_one_pixel_image_still_decode() {
        let dir = tempfile::tempdir().unwrap();
        // PNG bytes named .jpg: the format comes from the bytes, not the name.
        let misnamed = dir.path().join("really-a-png.jpg");
        fs::write(&misnamed, png_bytes(1, 1, ExtendedColorType::Rgb8, &[9, 8, 7])).unwrap();
        let image = DecodedImage::from_file(&misnamed).unwrap();
        assert_eq!((image.width, image.height, image.pixels.clone()), (1, 1, vec![9, 8, 7]));
        // A 1x1 image resizes to any size as one flat colour.
        let set = crate::data::SizedSet::build(&[image], &[0], 4, &[0.0, 0.0, 0.0], &[1.0, 1.0, 1.0]);
        assert!(set.image(0)[..16].iter().all(|v| (v - 9.0 / 255.0).abs() < 1e-6), "{:?}", &set.image(0)[..16]);
    }

    #[test]
    fn fail_policy_reports_the_first_bad_file_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.png");
        fs::write(&good, png_bytes(1, 1, ExtendedColorType::Rgb8, &[1, 2, 3])).unwrap();
        for bad in ["b.png", "c.png"] {
            fs::write(dir.path().join(bad), b"").unwrap();
        }
        // Input deliberately out of order: the report still names b.png.
        let items = vec![
            (dir.path().join("c.png"), 1),
            (good.clone(), 0),
            (dir.path().join("b.png"), 1),
        ];
        let error = decode_all(&items, CorruptPolicy::Fail).unwrap_err();
        assert_eq!(error.code, Code::CorruptImage);
        assert!(error.message.contains("b.png"), "{}", error.message);

        let decoded = decode_all(&items, CorruptPolicy::Skip).unwrap();
        assert_eq!(decoded.images.len(), 1);
        assert_eq!(decoded.images[0].pixels, vec![1, 2, 3]);
        assert_eq!(decoded.labels, vec![0]);
        let skipped: Vec<_> = decoded.skipped.iter().map(|(p, _)| p.file_name().unwrap()).collect();
        assert_eq!(skipped, vec!["c.png", "b.png"]);
        assert!(decoded.skipped[0].1.contains("empty"));
    }

    #[test]
    fn all_good_files_keep_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<(PathBuf, usize)> = (0..6u8)
            .map(|i| {
                let path = dir.path().join(format!("{i}.png"));
                fs::write(&path, png_bytes(1, 1, ExtendedColorType::Rgb8, &[i, i, i])).unwrap();
                (path, usize::from(i % 2))
            })
            .collect();
        let decoded = decode_all(&items, CorruptPolicy::Fail).unwrap();
        let firsts: Vec<u8> = decoded.images.iter().map(|image| image.pixels[0]).collect();
        assert_eq!(firsts, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(decoded.labels, vec![0, 1, 0, 1, 0, 1]);
        assert!(decoded.skipped.is_empty());
    }
}
