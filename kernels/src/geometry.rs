//! The shapes the kernels work on, with the sizes derived from them: the crate's ground floor,
//! imported by every kernel and importing none.

/// The shape of one convolution: dilation 1, one group, any stride and per-side padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub out_channels: usize,
    pub kernel_height: usize,
    pub kernel_width: usize,
    /// (vertical, horizontal)
    pub stride: [usize; 2],
    /// (top, left)
    pub padding_begin: [usize; 2],
    /// (bottom, right)
    pub padding_end: [usize; 2],
}

impl ConvGeometry {
    /// `None` when the kernel does not fit the padded input or a size is zero: those go to burn.
    pub fn checked(self) -> Option<Self> {
        let fits = self.in_height + self.padding_begin[0] + self.padding_end[0] >= self.kernel_height
            && self.in_width + self.padding_begin[1] + self.padding_end[1] >= self.kernel_width;
        let nonzero = [self.batch, self.in_channels, self.in_height, self.in_width, self.out_channels]
            .into_iter()
            .chain([self.kernel_height, self.kernel_width, self.stride[0], self.stride[1]])
            .all(|size| size > 0);
        (fits && nonzero).then_some(self)
    }

    pub fn out_height(&self) -> usize {
        (self.in_height + self.padding_begin[0] + self.padding_end[0] - self.kernel_height) / self.stride[0] + 1
    }

    pub fn out_width(&self) -> usize {
        (self.in_width + self.padding_begin[1] + self.padding_end[1] - self.kernel_width) / self.stride[1] + 1
    }

    pub(crate) fn in_pixels(&self) -> usize {
        self.in_height * self.in_width
    }

    pub(crate) fn out_pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Rows of the patch matrix: one per (input channel, kernel row, kernel column).
    pub(crate) fn patch_len(&self) -> usize {
        self.in_channels * self.kernel_height * self.kernel_width
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_pixels()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_pixels()
    }

    /// With stride 1 and padding narrower than the kernel, the input gradient is itself a
    /// convolution: of the output gradient, with the weight flipped and its channels swapped
    /// (`conv::flipped_weight`), padded by kernel − 1 − padding. This is its geometry.
    pub(crate) fn input_gradient_as_convolution(&self) -> Option<ConvGeometry> {
        let narrow = self.padding_begin[0].max(self.padding_end[0]) < self.kernel_height
            && self.padding_begin[1].max(self.padding_end[1]) < self.kernel_width;
        (self.stride == [1, 1] && narrow).then(|| ConvGeometry {
            batch: self.batch,
            in_channels: self.out_channels,
            in_height: self.out_height(),
            in_width: self.out_width(),
            out_channels: self.in_channels,
            kernel_height: self.kernel_height,
            kernel_width: self.kernel_width,
            stride: [1, 1],
            padding_begin: [self.kernel_height - 1 - self.padding_begin[0], self.kernel_width - 1 - self.padding_begin[1]],
            padding_end: [self.kernel_height - 1 - self.padding_end[0], self.kernel_width - 1 - self.padding_end[1]],
        })
    }
}

/// One max pool: `planes` = batch × channels planes of `height` × `width`, dilation 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    pub planes: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// (top, left)
    pub padding_begin: [usize; 2],
    /// (bottom, right)
    pub padding_end: [usize; 2],
}

impl PoolGeometry {
    /// `None` when a window could hold only padding, or a size is zero: those go to burn.
    pub fn checked(self) -> Option<Self> {
        let nonzero =
            [self.planes, self.height, self.width, self.kernel[0], self.kernel[1], self.stride[0], self.stride[1]].iter().all(|&size| size > 0);
        // PyTorch requires padding ≤ kernel / 2, so that every window meets the image.
        let meets_image = (0..2).all(|axis| 2 * self.padding_begin[axis].max(self.padding_end[axis]) <= self.kernel[axis]);
        let fits = self.height + self.padding_begin[0] + self.padding_end[0] >= self.kernel[0]
            && self.width + self.padding_begin[1] + self.padding_end[1] >= self.kernel[1];
        (nonzero && meets_image && fits).then_some(self)
    }

    pub fn out_height(&self) -> usize {
        (self.height + self.padding_begin[0] + self.padding_end[0] - self.kernel[0]) / self.stride[0] + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + self.padding_begin[1] + self.padding_end[1] - self.kernel[1]) / self.stride[1] + 1
    }

    pub fn input_len(&self) -> usize {
        self.planes * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        self.planes * self.out_height() * self.out_width()
    }

    /// Input rows (or columns) `[first, end)` of output row `o`'s window, inside the image.
    pub(crate) fn window(&self, axis: usize, o: usize, size: usize) -> (usize, usize) {
        let start = (o * self.stride[axis]) as isize - self.padding_begin[axis] as isize;
        let end = (start + self.kernel[axis] as isize).min(size as isize);
        (start.max(0) as usize, end.max(0) as usize)
    }
}
