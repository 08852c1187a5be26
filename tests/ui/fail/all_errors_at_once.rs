#[tinyo::isolated(hostname = "-x", timeout = "soon", net = "wifi", colour = "blue")]
fn t() {}

fn main() {}
