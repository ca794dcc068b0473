use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::data::{generate, write_image_folder};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Write a built-in synthetic data set as an image folder (<out>/<class>/<n>.png) to look at.
    Export(ExportArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// Built-in data set: shapes-source or shapes-target.
    pub task: String,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 20)]
    pub per_class: usize,
    #[arg(long, default_value_t = 32)]
    pub size: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(command: &DataCommand) -> u8 {
    match command {
        DataCommand::Export(args) => {
            let written = generate(&args.task, args.per_class, args.size, args.seed)
                .and_then(|(classes, images, labels)| {
                    write_image_folder(&args.out, &classes, &images, &labels).map(|()| (classes.len(), images.len()))
                });
            match written {
                Ok((classes, images)) => {
                    println!("wrote {images} images of {classes} classes to {}", args.out.display());
                    0
                }
                Err(diagnostic) => {
                    super::output::print_runtime_error(&diagnostic, std::path::Path::new(&args.task));
                    2
                }
            }
        }
    }
}
