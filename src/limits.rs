//! Bounds on the numbers a recipe may write, shared by the checker and the runtime so that a
//! recipe that lints also runs. Each is documented in docs/language.md; going past one is TL2007
//! (TL2003 for resize steps), naming the limit.

/// Largest image side, in pixels: for `size`, `resize` steps, a stats block's `size`, and for
/// decoding (a larger image header is refused before its pixels are allocated).
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Largest batch.
pub const MAX_BATCH: u32 = 65_536;
/// Most epochs in one stage.
pub const MAX_EPOCHS: u32 = 100_000;
/// Most batches accumulated into one optimizer step.
pub const MAX_ACCUMULATE: usize = 4096;
/// Most images per class of a built-in synthetic data set.
pub const MAX_SYNTHETIC_PER_CLASS: usize = 100_000;
/// Largest `augment crop` padding, in pixels.
pub const MAX_CROP_PADDING: i64 = 1024;
