// Toasts and confirmations, imported with their own CSS (Element Plus is imported per component,
// not installed whole). `grouping` folds the same message repeated into one toast with a count,
// so one failure never stacks identical alerts. The confirmation dialog (with its input and focus
// trap) is only needed to cancel an order: it loads then.
import { ElMessage } from "element-plus";
import "element-plus/es/components/message/style/css";

export function toastError(message: string) {
  ElMessage.error({ message, grouping: true });
}

export function toastSuccess(message: string) {
  ElMessage.success({ message, grouping: true });
}

export interface ConfirmText {
  title: string;
  message: string;
  confirm: string;
  cancel: string;
}

/** Resolves true when the user confirms, false when they back out. */
export async function confirmAction(text: ConfirmText): Promise<boolean> {
  const [{ ElMessageBox }] = await Promise.all([
    import("element-plus/es/components/message-box/index"),
    import("element-plus/es/components/message-box/style/css"),
  ]);
  try {
    await ElMessageBox.confirm(text.message, text.title, {
      confirmButtonText: text.confirm,
      cancelButtonText: text.cancel,
      type: "warning",
    });
    return true;
  } catch {
    return false;
  }
}
