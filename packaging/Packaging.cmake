# Packaging rules for loto: man pages, shell completions, documentation, and the RPM (CPack).
# Included from the top-level CMakeLists.txt, which installs the binary and /etc/loto.yaml.
#
# Both packages are made from these install rules: the .deb by debhelper (packaging/debian,
# `dh --buildsystem=cmake`, which runs `cmake --install`), the .rpm by `cpack -G RPM`.
# packaging/build-deb.sh builds both into build-pkg/out/.
#
# Options and cache variables:
#   LOTO_MAN                  build and install loto(1) and loto.yaml(5) from their scdoc
#                             sources (default ON when scdoc is found; ON without scdoc is
#                             an error)
#   LOTO_INSTALL_LICENSE      install packaging/LICENSE into the doc directory (default ON;
#                             the Debian build turns it off: debian/copyright carries it)
#   LOTO_BASH_COMPLETION_DIR  default ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
#   LOTO_ZSH_COMPLETION_DIR   default ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions
#                             (Debian's zsh searches it; Fedora's uses .../zsh/site-functions)

set(LOTO_PACKAGING_DIR ${CMAKE_CURRENT_LIST_DIR})

# --- man pages (scdoc) ---------------------------------------------------------------------
find_program(SCDOC_EXECUTABLE scdoc DOC "scdoc, which turns packaging/*.scd into man pages")
if(SCDOC_EXECUTABLE)
  set(loto_man_default ON)
else()
  set(loto_man_default OFF)
endif()
option(LOTO_MAN "Build and install the man pages loto(1) and loto.yaml(5) (needs scdoc)"
       ${loto_man_default})

if(LOTO_MAN)
  if(NOT SCDOC_EXECUTABLE)
    message(FATAL_ERROR "LOTO_MAN is ON but scdoc was not found: install scdoc "
                        "(apt-get install scdoc) or configure with -DLOTO_MAN=OFF")
  endif()
  set(loto_man_dir ${CMAKE_CURRENT_BINARY_DIR}/man)
  set(loto_man_pages)
  foreach(page IN ITEMS loto.1 loto.yaml.5)
    string(REGEX MATCH "[0-9]$" section ${page})
    # The sources hold @PROJECT_VERSION@ for the page footer.
    configure_file(${LOTO_PACKAGING_DIR}/${page}.scd ${loto_man_dir}/${page}.scd @ONLY)
    add_custom_command(
      OUTPUT ${loto_man_dir}/${page}
      # scdoc's ".nh" comes before ".TH", which turns hyphenation back on: repeat it after.
      COMMAND sh -c "\"$0\" < \"$1\" > \"$2.tmp\" && sed '/^\\.TH /a .nh' \"$2.tmp\" > \"$2\""
              ${SCDOC_EXECUTABLE} ${loto_man_dir}/${page}.scd ${loto_man_dir}/${page}
      DEPENDS ${loto_man_dir}/${page}.scd
      COMMENT "scdoc: ${page}"
      VERBATIM)
    install(FILES ${loto_man_dir}/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
    list(APPEND loto_man_pages ${loto_man_dir}/${page})
  endforeach()
  add_custom_target(man ALL DEPENDS ${loto_man_pages})
endif()

# --- shell completion ----------------------------------------------------------------------
set(LOTO_BASH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
    CACHE STRING "Where the bash completion file is installed (relative to the prefix)")
set(LOTO_ZSH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions"
    CACHE STRING "Where the zsh completion file _loto is installed (relative to the prefix)")
install(FILES ${LOTO_PACKAGING_DIR}/completions/loto.bash
        DESTINATION ${LOTO_BASH_COMPLETION_DIR} RENAME loto)
install(FILES ${LOTO_PACKAGING_DIR}/completions/_loto DESTINATION ${LOTO_ZSH_COMPLETION_DIR})

# --- documentation -------------------------------------------------------------------------
option(LOTO_INSTALL_LICENSE "Install the license text into the doc directory" ON)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The annotated config: the shipped /etc/loto.yaml stays short, as loto parses it per call.
install(FILES ${PROJECT_SOURCE_DIR}/etc/loto.example.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples RENAME loto.yaml)
if(LOTO_INSTALL_LICENSE)
  install(FILES ${LOTO_PACKAGING_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

# --- RPM (cpack -G RPM) --------------------------------------------------------------------
# With LOTO_STATIC_DEPS (the default) the RPM needs only glibc >= 2.36; without it, it
# requires Debian's library sonames (libyaml-cpp.so.0.7, libspdlog, libfmt). Either way it
# is built on Debian and checked as a format artifact.
if(PROJECT_IS_TOP_LEVEL)
  set(CPACK_GENERATOR RPM)
  set(CPACK_SOURCE_GENERATOR TGZ)
  set(CPACK_PACKAGE_NAME loto)
  set(CPACK_PACKAGE_VENDOR "The loto authors")
  set(CPACK_PACKAGE_CONTACT "Seed 3aed0822 maintainers <maintainers@users.noreply.r-seed-3aed0822.example>")
  set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
  # The long description, wrapped as rpmlint wants (lines under 80 characters).
  string(CONCAT CPACK_PACKAGE_DESCRIPTION
         "loto takes an exclusive flock(2) lock on a file, runs a command, waits for\n"
         "it, releases the lock and exits with the command's status. It keeps cron jobs\n"
         "from piling up on each other, serialises scripts that touch one database or\n"
         "log, and lets heavy batch jobs take turns.\n"
         "\n"
         "Locks can be named in /etc/loto.yaml, which sets each one's lock file,\n"
         "waiting policy (give up at once, wait, or wait with a timeout) and exit code.\n"
         "Every run leaves key=value audit records in syslog. Lock files are opened\n"
         "safely in shared directories such as /run/lock: symlinks, FIFOs, devices and\n"
         "hard links are refused. loto and flock(1) exclude each other.")
  set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
  set(CPACK_PACKAGE_RELOCATABLE OFF)
  set(CPACK_STRIP_FILES ON)
  set(CPACK_RESOURCE_FILE_LICENSE ${LOTO_PACKAGING_DIR}/LICENSE)

  set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
  set(CPACK_RPM_PACKAGE_SUMMARY "Run a command while holding a lock")
  set(CPACK_RPM_PACKAGE_RELEASE 1)
  set(CPACK_RPM_PACKAGE_LICENSE MIT)
  set(CPACK_RPM_PACKAGE_GROUP "Applications/System")
  set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
  set(CPACK_RPM_CHANGELOG_FILE ${LOTO_PACKAGING_DIR}/rpm/changelog)
  # Packager tag; no /usr/lib/.build-id links (the package has one binary, no debuginfo).
  set(CPACK_RPM_SPEC_MORE_DEFINE "%define packager ${CPACK_PACKAGE_CONTACT}\n%define _build_id_links none")
  # rpmbuild's brp-compress gzips man pages on Fedora, but Debian's copy fails under dash
  # ("read: Illegal option -d"): compress them in the staging tree first, on every system.
  set(CPACK_PRE_BUILD_SCRIPTS ${LOTO_PACKAGING_DIR}/rpm/compress-man.cmake)
  set(loto_rpm_files "%config(noreplace) ${LOTO_DEFAULT_CONFIG}"
                     "%doc ${CMAKE_INSTALL_FULL_DOCDIR}/README.md")
  if(LOTO_INSTALL_LICENSE)
    list(APPEND loto_rpm_files "%license ${CMAKE_INSTALL_FULL_DOCDIR}/LICENSE")
  endif()
  set(CPACK_RPM_USER_FILELIST ${loto_rpm_files})
  # Directories the system owns: the package must not claim them.
  set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
      ${CMAKE_INSTALL_FULL_SYSCONFDIR}
      ${CMAKE_INSTALL_FULL_MANDIR}
      ${CMAKE_INSTALL_FULL_MANDIR}/man1
      ${CMAKE_INSTALL_FULL_MANDIR}/man5
      ${CMAKE_INSTALL_FULL_DATADIR}/bash-completion
      ${CMAKE_INSTALL_FULL_DATADIR}/bash-completion/completions
      ${CMAKE_INSTALL_FULL_DATADIR}/zsh
      ${CMAKE_INSTALL_FULL_DATADIR}/zsh/vendor-completions
      ${CMAKE_INSTALL_FULL_DATADIR}/doc)
  include(CPack)
endif()
