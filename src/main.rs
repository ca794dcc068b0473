fn main() -> std::process::ExitCode {
    tlrun::runtime::allocator::reuse_freed_memory();
    tlrun::cli::main()
}
