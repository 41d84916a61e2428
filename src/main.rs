fn main() -> std::process::ExitCode {
    eks_upgrade::cli::main()
}
