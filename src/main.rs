fn main() -> std::process::ExitCode {
    tlrun::cli::main()
}
