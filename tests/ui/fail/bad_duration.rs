#[tinyo::isolated(timeout = "5 sec")]
fn t() {}

fn main() {}
