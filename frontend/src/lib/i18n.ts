import type { Locale } from "@/store/ui";

const en = {
  "app.title": "crm2",
  "signin.title": "Sign in",
  "signin.email": "E-mail",
  "signin.password": "Password",
  "signin.submit": "Sign in",
  "signin.failed": "Wrong e-mail or password",
  "signout": "Sign out",
  "profile": "Profile",
  "profile.roles": "Roles",
  "profile.permissions": "Permissions",
  "nav.home": "Home",
  "home.welcome": "Welcome, {name}",
  "home.sections": "Your sections",
  "live.live": "Live",
  "live.connecting": "Connecting…",
  "live.reconnecting": "Reconnecting…",
  "live.closed": "Offline",
  "board.pipeline": "Pipeline",
  "board.empty": "No deals",
  "board.moveTo": "Move to",
  "board.total": "Total",
  "board.lostReason": "Why was it lost?",
  "deal.client": "Client",
  "deal.value": "Value",
  "deal.stage": "Stage",
  "deal.status": "Status",
  "deal.history": "Stage history",
  "deal.activities": "Activities",
  "deal.back": "Back to the board",
  "list.more": "Load more",
  "list.empty": "Nothing here yet",
  "list.filter": "Filter",
  "list.create": "Create",
  "list.actions": "Actions",
  "form.save": "Save",
  "form.cancel": "Cancel",
  "form.saved": "Saved",
  "form.edit": "Edit",
  "form.reload": "Reload",
  "error.conflict": "Someone else changed this record; reload it and try again",
  "error.generic": "Something went wrong",
  "loading": "Loading…",
  "theme.toggle": "Switch theme",
  "language": "Language",
} as const;

export type MessageKey = keyof typeof en;

const ru: Record<MessageKey, string> = {
  "app.title": "crm2",
  "signin.title": "Вход",
  "signin.email": "Эл. почта",
  "signin.password": "Пароль",
  "signin.submit": "Войти",
  "signin.failed": "Неверная почта или пароль",
  "signout": "Выйти",
  "profile": "Профиль",
  "profile.roles": "Роли",
  "profile.permissions": "Права",
  "nav.home": "Главная",
  "home.welcome": "Добро пожаловать, {name}",
  "home.sections": "Ваши разделы",
  "live.live": "Онлайн",
  "live.connecting": "Подключение…",
  "live.reconnecting": "Переподключение…",
  "live.closed": "Нет связи",
  "board.pipeline": "Воронка",
  "board.empty": "Нет сделок",
  "board.moveTo": "Перенести в",
  "board.total": "Итого",
  "board.lostReason": "Почему сделка проиграна?",
  "deal.client": "Клиент",
  "deal.value": "Сумма",
  "deal.stage": "Этап",
  "deal.status": "Статус",
  "deal.history": "История этапов",
  "deal.activities": "Активности",
  "deal.back": "К доске",
  "list.more": "Показать ещё",
  "list.empty": "Пока пусто",
  "list.filter": "Фильтр",
  "list.create": "Создать",
  "list.actions": "Действия",
  "form.save": "Сохранить",
  "form.cancel": "Отмена",
  "form.saved": "Сохранено",
  "form.edit": "Изменить",
  "form.reload": "Обновить",
  "error.conflict": "Запись изменил кто-то другой; обновите её и попробуйте снова",
  "error.generic": "Что-то пошло не так",
  "loading": "Загрузка…",
  "theme.toggle": "Сменить тему",
  "language": "Язык",
};

export const messages: Record<Locale, Record<MessageKey, string>> = { en, ru };

export function translate(
  locale: Locale,
  key: MessageKey,
  params: Record<string, string> = {},
): string {
  const template = messages[locale][key] ?? en[key];
  return template.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? `{${name}}`);
}

const intlLocale: Record<Locale, string> = { en: "en-GB", ru: "ru-RU" };

/** Money from crm2's decimal string and ISO currency, per locale (never through float maths). */
export function formatMoney(locale: Locale, amount: string, currency: string): string {
  return new Intl.NumberFormat(intlLocale[locale], { style: "currency", currency }).format(
    Number(amount),
  );
}

export function formatDateTime(locale: Locale, iso: string): string {
  return new Intl.DateTimeFormat(intlLocale[locale], {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(iso));
}

export function formatDate(locale: Locale, iso: string): string {
  return new Intl.DateTimeFormat(intlLocale[locale], { dateStyle: "medium" }).format(new Date(iso));
}
