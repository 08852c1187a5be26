#[tinyo::isolated(bind = "data:relative/dst", tmpfs = "var/cache", workdir = "../up", readonly_root = "yes")]
fn t() {}

#[tinyo::isolated(bind = "data:/srv:rx", file = ("relative", "x"), file = "/etc/x")]
fn u() {}

fn main() {}
