//! Parsing one step (one command-line argument) into a [`Step`]; the syntax is in `main.rs`.

use crate::text;
use crate::warden::device::{gpio, i2c, log, power, pwm, spi, sysevent};

/// One parsed step. Names stay strings: the host, not the probe, decides what they mean.
pub(crate) enum Step {
    GpioOut(String, gpio::Level),
    GpioSet(String, gpio::Level),
    GpioToggle(String),
    GpioGet(String),
    GpioIn(String),
    GpioWait(String, gpio::Edge, u32),
    GpioInOut(String, InOutAction),
    UartWrite(String, Vec<u8>),
    UartRead(String, u32, u32),
    UartFlush(String),
    I2cWriteRead(String, u16, Vec<u8>, u32),
    I2cWrite(String, u16, Vec<u8>),
    I2cRead(String, u16, u32),
    I2cTx(String, u16, Vec<i2c::Operation>),
    SpiTransfer(String, Vec<u8>),
    SpiWrite(String, Vec<u8>),
    SpiRead(String, u32),
    SpiTx(String, Vec<spi::Operation>),
    Adc(String, u32),
    Pwm(String, u32, pwm::State),
    IntercoreSend(String, Vec<u8>),
    IntercoreRecv(String, u32),
    IntercoreMax(String),
    SyseventNext(u32),
    SyseventDefer(sysevent::UpdateKind, u32),
    SyseventResume(sysevent::UpdateKind),
    PowerReboot,
    PowerDown(u32),
    PowerProfile(power::PowerProfile),
    Log(log::Level, String, String),
    OpenTwice(Kind, String),
    Close(Kind, String),
    Sleep(u32),
}

pub(crate) enum InOutAction {
    Open,
    SetOutput(gpio::Level),
    SetInput,
    Get,
}

/// The kinds of peripheral the probe can hold open, as `open-twice` and `close` name them.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    GpioOut,
    GpioIn,
    GpioInOut,
    Uart,
    I2c,
    Spi,
    Adc,
    Pwm,
    Intercore,
}

/// Parses one step; the error says what was expected.
pub(crate) fn parse(arg: &str) -> Result<Step, String> {
    let mut words = Words(arg);
    let verb = words.word("a step")?;
    let step = match verb {
        "gpio-out" => Step::GpioOut(words.name()?, words.gpio_level()?),
        "gpio-set" => Step::GpioSet(words.name()?, words.gpio_level()?),
        "gpio-toggle" => Step::GpioToggle(words.name()?),
        "gpio-get" => Step::GpioGet(words.name()?),
        "gpio-in" => Step::GpioIn(words.name()?),
        "gpio-wait" => Step::GpioWait(words.name()?, words.edge()?, words.number("TIMEOUT_MS")?),
        "gpio-inout" => {
            let name = words.name()?;
            let action = match words.word("open, set-output, set-input or get")? {
                "open" => InOutAction::Open,
                "set-output" => InOutAction::SetOutput(words.gpio_level()?),
                "set-input" => InOutAction::SetInput,
                "get" => InOutAction::Get,
                other => return Err(format!("unknown gpio-inout action {other:?}")),
            };
            Step::GpioInOut(name, action)
        }
        "uart-write" => Step::UartWrite(words.name()?, words.text()?),
        "uart-read" => Step::UartRead(
            words.name()?,
            words.number("MAX")?,
            words.number("TIMEOUT_MS")?,
        ),
        "uart-flush" => Step::UartFlush(words.name()?),
        "i2c-write-read" => Step::I2cWriteRead(
            words.name()?,
            words.address()?,
            words.hex()?,
            words.number("LEN")?,
        ),
        "i2c-write" => Step::I2cWrite(words.name()?, words.address()?, words.hex()?),
        "i2c-read" => Step::I2cRead(words.name()?, words.address()?, words.number("LEN")?),
        "i2c-tx" => {
            let (name, address) = (words.name()?, words.address()?);
            let ops = words.ops(|kind, arg| match kind {
                "r" => Ok(i2c::Operation::Read(text::number(arg)?)),
                "w" => Ok(i2c::Operation::Write(text::hex(arg)?)),
                _ => Err(format!("unknown i2c operation {kind:?}: r:LEN or w:HEX")),
            })?;
            Step::I2cTx(name, address, ops)
        }
        "spi-transfer" => Step::SpiTransfer(words.name()?, words.hex()?),
        "spi-write" => Step::SpiWrite(words.name()?, words.hex()?),
        "spi-read" => Step::SpiRead(words.name()?, words.number("LEN")?),
        "spi-tx" => {
            let name = words.name()?;
            let ops = words.ops(|kind, arg| match kind {
                "r" => Ok(spi::Operation::Read(text::number(arg)?)),
                "w" => Ok(spi::Operation::Write(text::hex(arg)?)),
                "x" => Ok(spi::Operation::Transfer(text::hex(arg)?)),
                "d" => Ok(spi::Operation::DelayUs(text::number(arg)?)),
                _ => Err(format!(
                    "unknown spi operation {kind:?}: r:LEN, w:HEX, x:HEX or d:MICROSECONDS"
                )),
            })?;
            Step::SpiTx(name, ops)
        }
        "adc" => Step::Adc(words.name()?, words.number("CHANNEL")?),
        "pwm" => {
            let (name, channel) = (words.name()?, words.number("CHANNEL")?);
            let state = pwm::State {
                period_ns: words.number("PERIOD_NS")?,
                duty_ns: words.number("DUTY_NS")?,
                polarity: match words.word("normal or inversed")? {
                    "normal" => pwm::Polarity::Normal,
                    "inversed" => pwm::Polarity::Inversed,
                    other => return Err(format!("expected normal or inversed, not {other:?}")),
                },
                enabled: match words.word("on or off")? {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("expected on or off, not {other:?}")),
                },
            };
            Step::Pwm(name, channel, state)
        }
        "intercore-send" => Step::IntercoreSend(words.name()?, words.text()?),
        "intercore-recv" => Step::IntercoreRecv(words.name()?, words.number("TIMEOUT_MS")?),
        "intercore-max" => Step::IntercoreMax(words.name()?),
        "sysevent-next" => Step::SyseventNext(words.number("TIMEOUT_MS")?),
        "sysevent-defer" => Step::SyseventDefer(words.update_kind()?, words.number("MINUTES")?),
        "sysevent-resume" => Step::SyseventResume(words.update_kind()?),
        "power-reboot" => Step::PowerReboot,
        "power-down" => Step::PowerDown(words.number("SECONDS")?),
        "power-profile" => Step::PowerProfile(words.power_profile()?),
        "log" => {
            let level = match words.word("a log level")? {
                "trace" => log::Level::Trace,
                "debug" => log::Level::Debug,
                "info" => log::Level::Info,
                "warn" => log::Level::Warn,
                "error" => log::Level::Error,
                other => return Err(format!("unknown log level {other:?}")),
            };
            let context = words.word("CONTEXT")?.to_owned();
            let message = String::from_utf8(words.text()?)
                .map_err(|_| "MESSAGE is not UTF-8 after its escapes".to_owned())?;
            Step::Log(level, context, message)
        }
        "open-twice" => Step::OpenTwice(words.kind()?, words.name()?),
        "close" => Step::Close(words.kind()?, words.name()?),
        "sleep" => Step::Sleep(words.number("MILLISECONDS")?),
        other => return Err(format!("unknown step {other:?}")),
    };
    words.end()?;
    Ok(step)
}

/// The part of a step not parsed yet.
struct Words<'a>(&'a str);

impl<'a> Words<'a> {
    /// The next space-separated word; `what` names it in the error if there is none.
    fn word(&mut self, what: &str) -> Result<&'a str, String> {
        let rest = self.0.trim_start_matches(' ');
        if rest.is_empty() {
            return Err(format!("missing {what}"));
        }
        let end = rest.find(' ').unwrap_or(rest.len());
        self.0 = &rest[end..];
        Ok(&rest[..end])
    }

    /// TEXT: everything after the one space that ends the previous word, unescaped, so a text
    /// may hold any bytes, spaces included.
    fn text(&mut self) -> Result<Vec<u8>, String> {
        let rest = self.0.strip_prefix(' ').ok_or("missing TEXT")?;
        self.0 = "";
        text::unescape(rest)
    }

    /// Every remaining word as a `KIND:ARG` operation.
    fn ops<T>(
        &mut self,
        mut op: impl FnMut(&str, &str) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut ops = Vec::new();
        while !self.0.trim_start_matches(' ').is_empty() {
            let word = self.word("an operation")?;
            let (kind, arg) = word
                .split_once(':')
                .ok_or_else(|| format!("operation {word:?} is not KIND:ARG"))?;
            ops.push(op(kind, arg)?);
        }
        Ok(ops)
    }

    fn end(&self) -> Result<(), String> {
        match self.0.trim_start_matches(' ') {
            "" => Ok(()),
            extra => Err(format!("unexpected {extra:?} at the end")),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.word("NAME").map(str::to_owned)
    }

    fn number(&mut self, what: &str) -> Result<u32, String> {
        text::number(self.word(what)?)
    }

    fn hex(&mut self) -> Result<Vec<u8>, String> {
        text::hex(self.word("HEX")?)
    }

    fn address(&mut self) -> Result<u16, String> {
        let word = self.word("ADDR")?;
        u16::try_from(text::number(word)?).map_err(|_| format!("address {word:?} is too large"))
    }

    fn gpio_level(&mut self) -> Result<gpio::Level, String> {
        match self.word("high or low")? {
            "high" => Ok(gpio::Level::High),
            "low" => Ok(gpio::Level::Low),
            other => Err(format!("expected high or low, not {other:?}")),
        }
    }

    fn edge(&mut self) -> Result<gpio::Edge, String> {
        match self.word("rising, falling or both")? {
            "rising" => Ok(gpio::Edge::Rising),
            "falling" => Ok(gpio::Edge::Falling),
            "both" => Ok(gpio::Edge::Both),
            other => Err(format!("expected rising, falling or both, not {other:?}")),
        }
    }

    fn power_profile(&mut self) -> Result<power::PowerProfile, String> {
        match self.word("power-saver, balanced or high-performance")? {
            "power-saver" => Ok(power::PowerProfile::PowerSaver),
            "balanced" => Ok(power::PowerProfile::Balanced),
            "high-performance" => Ok(power::PowerProfile::HighPerformance),
            other => Err(format!(
                "expected power-saver, balanced or high-performance, not {other:?}"
            )),
        }
    }

    fn update_kind(&mut self) -> Result<sysevent::UpdateKind, String> {
        match self.word("app or os")? {
            "app" => Ok(sysevent::UpdateKind::App),
            "os" => Ok(sysevent::UpdateKind::Os),
            other => Err(format!("expected app or os, not {other:?}")),
        }
    }

    fn kind(&mut self) -> Result<Kind, String> {
        Ok(match self.word("KIND")? {
            "gpio-out" => Kind::GpioOut,
            "gpio-in" => Kind::GpioIn,
            "gpio-inout" => Kind::GpioInOut,
            "uart" => Kind::Uart,
            "i2c" => Kind::I2c,
            "spi" => Kind::Spi,
            "adc" => Kind::Adc,
            "pwm" => Kind::Pwm,
            "intercore" => Kind::Intercore,
            other => return Err(format!("unknown peripheral kind {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_steps_parse() {
        assert!(matches!(
            parse("gpio-out SAMPLE_LED high"),
            Ok(Step::GpioOut(name, gpio::Level::High)) if name == "SAMPLE_LED"
        ));
        assert!(matches!(
            parse("gpio-wait SAMPLE_BUTTON_1 falling 250"),
            Ok(Step::GpioWait(_, gpio::Edge::Falling, 250))
        ));
        assert!(matches!(
            parse("i2c-write-read SAMPLE_LSM6DS3_I2C 0x6a 0f 1"),
            Ok(Step::I2cWriteRead(_, 0x6a, data, 1)) if data == [0x0f]
        ));
        assert!(matches!(
            parse("open-twice uart SAMPLE_UART"),
            Ok(Step::OpenTwice(Kind::Uart, _))
        ));
    }

    #[test]
    fn text_is_the_rest_of_the_step() {
        assert!(matches!(
            parse("uart-write SAMPLE_UART hello  world\\n"),
            Ok(Step::UartWrite(_, data)) if data == b"hello  world\n"
        ));
        assert!(matches!(
            parse("log warn probe two words"),
            Ok(Step::Log(log::Level::Warn, context, message))
                if context == "probe" && message == "two words"
        ));
    }

    #[test]
    fn transactions_take_every_remaining_operation() {
        let Ok(Step::SpiTx(_, ops)) = parse("spi-tx SAMPLE_SPI w:8f r:1 x:0000 d:10") else {
            panic!("spi-tx did not parse");
        };
        assert!(matches!(
            ops.as_slice(),
            [
                spi::Operation::Write(_),
                spi::Operation::Read(1),
                spi::Operation::Transfer(_),
                spi::Operation::DelayUs(10)
            ]
        ));
        assert!(
            matches!(parse("i2c-tx BUS 0x48"), Ok(Step::I2cTx(_, 0x48, ops)) if ops.is_empty())
        );
    }

    #[test]
    fn malformed_steps_are_refused() {
        for bad in [
            "",
            "blink",
            "gpio-out SAMPLE_LED",
            "gpio-out SAMPLE_LED on",
            "gpio-in SAMPLE_BUTTON_1 extra",
            "uart-write SAMPLE_UART",
            "i2c-read BUS 0x10000 1",
            "i2c-tx BUS 0x48 q:1",
            "pwm PWM 0 1000 500 normal maybe",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
