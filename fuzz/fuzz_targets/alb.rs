#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| logferry_fuzz::check("alb", data));
