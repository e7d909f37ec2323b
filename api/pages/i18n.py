# ruff: noqa: RUF001  (Chinese text uses full-width punctuation: it is meant)
"""English and Simplified Chinese for the pages: a dict of messages per locale.

Why not gettext catalogs: Babel's extraction and compiled .mo files add a build step
and a dependency for a few hundred strings. Here a message's key is its English text;
`ZH` gives its Chinese, and a missing one shows the English (tests/pages/test_i18n.py
checks that every key the templates use has a translation). The locale is the
`paysaga_lang` cookie (the switch in the page header) or else the best of
`Accept-Language`.
"""

from __future__ import annotations

LOCALES = ("en", "zh")
DEFAULT_LOCALE = "en"
LANG_COOKIE = "paysaga_lang"

ZH: dict[str, str] = {
    "Merchant dashboard": "商户后台",
    "Operator console": "运营控制台",
    "Sign in": "登录",
    "Sign out": "退出登录",
    "Email": "邮箱",
    "Password": "密码",
    "Current password": "当前密码",
    "New password": "新密码",
    "Change password": "修改密码",
    "Wrong email or password.": "邮箱或密码错误。",
    "Too many attempts; try again in a minute.": "尝试次数过多，请稍后再试。",
    "The form expired; please try again.": "表单已过期，请重试。",
    "Orders": "订单",
    "Order": "订单",
    "Balances": "余额",
    "Statements": "对账单",
    "Payouts": "付款",
    "API keys": "API 密钥",
    "Webhooks": "Webhook",
    "Team": "团队",
    "Status": "状态",
    "Channel": "渠道",
    "Any": "全部",
    "From": "起始日期",
    "To": "截止日期",
    "Min amount": "最低金额",
    "Max amount": "最高金额",
    "Search by order id": "按订单号搜索",
    "Filter": "筛选",
    "Amount": "金额",
    "Created": "创建时间",
    "Refunded": "已退款",
    "Buyer paid": "买家支付",
    "for": "兑",
    "Buyer refunded": "买家退回",
    "Quote": "报价",
    "channel rate": "渠道汇率",
    "Credited in": "入账币种",
    "bank rate": "银行汇率",
    "Next page": "下一页",
    "No orders match.": "没有符合条件的订单。",
    "Timeline": "时间线",
    "Saga step": "流程步骤",
    "Payment attempt": "支付尝试",
    "Refund": "退款",
    "Ledger entry": "账务分录",
    "Webhook delivery": "Webhook 投递",
    "Notification": "通知",
    "Resend": "重新发送",
    "Delivered": "已送达",
    "Not delivered": "未送达",
    "attempts": "次尝试",
    "Refund this order": "为此订单退款",
    "Amount to refund (minor units)": "退款金额（最小货币单位）",
    "Or units per line": "或按商品行退款数量",
    "Reason": "原因",
    "Ask for the refund": "申请退款",
    "Refund accepted.": "退款已受理。",
    "Delivery started again.": "已重新开始投递。",
    "Lines": "商品",
    "Quantity": "数量",
    "Unit price": "单价",
    "Total": "合计",
    "Discount": "优惠",
    "Payable": "应付",
    "Open in Temporal UI": "在 Temporal UI 中打开",
    "The workflow history is not available right now.": "暂时无法读取流程历史。",
    "Pending": "待结算",
    "Available": "可用",
    "In transit": "在途",
    "Currency": "币种",
    "Day": "日期",
    "Closing": "期末",
    "Download CSV": "下载 CSV",
    "No statements yet.": "暂无对账单。",
    "Name": "名称",
    "Create a key": "创建密钥",
    "Copy this key now: it is shown only once.": "请立即复制此密钥：它只显示这一次。",
    "Revoke": "吊销",
    "Revoked": "已吊销",
    "Live": "有效",
    "Webhook URL": "Webhook 地址",
    "Save": "保存",
    "Rotate the signing secret": "更换签名密钥",
    "Copy this secret now: it is shown only once.": "请立即复制此密钥：它只显示这一次。",
    "Delivery log": "投递记录",
    "Add a team member": "添加团队成员",
    "Owner": "所有者",
    "Staff": "员工",
    "Saved.": "已保存。",
    "Review queue": "待审核",
    "Nothing needs review.": "没有待审核的订单。",
    "Retry compensation": "重试补偿",
    "Retry sent.": "已发送重试。",
    "Merchants": "商户",
    "Onboard a merchant": "新增商户",
    "Commission rate": "佣金费率",
    "Settlement currency": "结算币种",
    "Bank account": "银行账户",
    "Suspend": "暂停",
    "Reactivate": "恢复",
    "Add a merchant user": "添加商户用户",
    "Coupons": "优惠券",
    "Code": "券码",
    "Kind": "类型",
    "Redeemed": "已占用",
    "Limit": "上限",
    "Disabled": "已停用",
    "Disable": "停用",
    "Settlement runs": "结算批次",
    "Run a day": "结算某日",
    "Run": "运行",
    "Progress": "进度",
    "Ledger": "账本",
    "Trial balance": "试算平衡",
    "Ledger invariants": "账本不变量",
    "All invariants hold.": "所有不变量均成立。",
    "Language": "语言",
    "Page not found.": "页面不存在。",
    "Not found": "未找到",
    "Back": "返回",
    "needs review": "需审核",
    "Checkout": "收银台",
    "Alipay": "支付宝",
    "WeChat Pay": "微信支付",
    "Bank card": "银行卡",
    "Payment received": "支付成功",
    "You paid": "您已向",
    "to": "支付给",
    "Time ran out": "支付超时",
    "The order was not paid in time and is closed. Nothing was charged.": (
        "订单未在规定时间内支付，已关闭。未扣款。"
    ),
    "Payment declined": "支付被拒绝",
    "The payment was declined and the order is closed. Nothing was charged.": (
        "支付被拒绝，订单已关闭。未扣款。"
    ),
    "Order cancelled": "订单已取消",
    "The order was cancelled. Nothing was charged.": "订单已取消。未扣款。",
    "Payment given back": "款项已退回",
    "The order could not be completed; your payment is being returned in full.": (
        "订单无法完成，您的付款将全额退回。"
    ),
    "This order is closed": "订单已关闭",
    "It can no longer be paid. Nothing was charged.": "此订单已无法支付。未扣款。",
    "Your order": "您的订单",
    "Coupon": "优惠券",
    "Amount due": "应付金额",
    "Price": "价格",
    "at a locked exchange rate": "按锁定汇率",
    "Pay with": "支付方式：",
    "Scan this code with the app to pay.": "请用 App 扫描二维码付款。",
    "Open the payment page": "打开支付页面",
    "Choose how to pay": "选择支付方式",
    "Or pay another way": "或选择其他支付方式",
    "This page updates by itself once you have paid.": "付款后本页会自动更新。",
    "Preparing your order…": "正在准备您的订单…",
    "Back to the shop": "返回商店",
    "Choose one of the methods shown.": "请选择页面上列出的支付方式。",
    "This method could not be chosen now.": "暂时无法选择此支付方式。",
    "The payment service is busy; please try again.": "支付服务繁忙，请稍后重试。",
}

_CATALOGS: dict[str, dict[str, str]] = {"en": {}, "zh": ZH}


def translate(locale: str, message: str) -> str:
    return _CATALOGS.get(locale, {}).get(message, message)


def choose_locale(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's locale if it is one of ours, else the best of Accept-Language
    (by q, then order), else English."""
    if cookie in LOCALES:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    for negative_quality, _position, language in sorted(ranked):
        if negative_quality < 0 and language in LOCALES:
            return language
    return DEFAULT_LOCALE
