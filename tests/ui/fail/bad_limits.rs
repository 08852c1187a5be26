#[tinyo::isolated(memory = "256 MB", pids = "64")]
fn t() {}

#[tinyo::isolated(memory = 256, pids = 1)]
fn u() {}

fn main() {}
